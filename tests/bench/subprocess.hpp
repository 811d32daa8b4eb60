#pragma once

#include <string>

namespace joule::bench::test {

struct command_result {
  int exit_code = -1;
  std::string out; // stdout only; stderr passes through to the test log
};

/// Runs `command` with /bin/sh and captures its standard output.
command_result run_command(const std::string& command);

/// Single-quotes `arg` for /bin/sh.
std::string shell_quote(const std::string& arg);

} // namespace joule::bench::test
