#include "core/process_metrics.hpp"

#include <fstream>
#include <sstream>
#include <vector>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/metrics.hpp"

#include "joule_build_info.h"  // generated: JOULE_VERSION, JOULE_REVISION

namespace joule::metrics {
namespace {

std::string slurp(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void family(std::string& out, const char* name, const char* type, const char* help,
            const std::optional<double>& v) {
  if (!v)
    return;
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
         name + " " + format_value(*v) + "\n";
}

} // namespace

process_sample sample_process() {
  process_sample s;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // /proc/self/stat: "pid (comm) state ppid ...". comm may hold spaces and ')', so fields are
  // counted from the last ')'. After it, field 3 (state) is index 0.
  auto stat = slurp("/proc/self/stat");
  auto close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream in(stat.substr(close + 1));
    std::vector<std::string> f;
    for (std::string w; in >> w;)
      f.push_back(w);
    // utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24 (1-based, man 5 proc)
    if (f.size() >= 22) {
      try {
        s.cpu_seconds = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
        s.threads = std::stod(f[20 - 3]);
        auto start_ticks = std::stod(f[22 - 3]);
        s.virtual_bytes = std::stod(f[23 - 3]);
        s.resident_bytes = std::stod(f[24 - 3]) * page;
        // starttime counts clock ticks since boot; boot time is btime in /proc/stat.
        auto pstat = slurp("/proc/stat");
        auto b = pstat.find("\nbtime ");
        if (b != std::string::npos)
          s.start_time_seconds = std::stod(pstat.substr(b + 7)) + start_ticks / ticks;
      } catch (const std::exception&) {
        // A /proc format we do not understand: export what was read before it.
      }
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    double n = 0;
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    ::closedir(d);
    s.open_fds = n - 1;  // not the descriptor opendir itself holds
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    s.max_fds = static_cast<double>(lim.rlim_cur);
  return s;
}

void render_process(std::string& out) {
  auto s = sample_process();
  family(out, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.", s.cpu_seconds);
  family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         s.resident_bytes);
  family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
         s.virtual_bytes);
  family(out, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.", s.start_time_seconds);
  family(out, "process_open_fds", "gauge", "Number of open file descriptors.", s.open_fds);
  family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
         s.max_fds);
  family(out, "joule_process_threads", "gauge", "OS threads of the process.", s.threads);
  out += "# HELP joule_build_info The version and git revision this binary was built from "
         "(always 1).\n# TYPE joule_build_info gauge\njoule_build_info{version=\"";
  out += build_version();
  out += "\",revision=\"";
  out += build_revision();
  out += "\"} 1\n";
}

const char* build_version() { return JOULE_VERSION; }
const char* build_revision() { return JOULE_REVISION; }

} // namespace joule::metrics
