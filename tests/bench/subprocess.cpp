#include "subprocess.hpp"

#include <cstdio>
#include <sys/wait.h>

namespace joule::bench::test {

command_result run_command(const std::string& command) {
  command_result r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe)
    return r;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0)
    r.out.append(buf, n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string shell_quote(const std::string& arg) {
  std::string q = "'";
  for (char c : arg)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

} // namespace joule::bench::test
