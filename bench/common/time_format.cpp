#include "common/time_format.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace joule::bench {

namespace {

// Howard Hinnant's civil-from-days, so formatting does not depend on the C library's TZ state.
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void put2(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

} // namespace

void format_rfc3339(unix_seconds t, char* out) {
  int64_t days = t / 86400;
  int64_t secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  unsigned yy = static_cast<unsigned>(y);
  out[0] = static_cast<char>('0' + yy / 1000 % 10);
  out[1] = static_cast<char>('0' + yy / 100 % 10);
  out[2] = static_cast<char>('0' + yy / 10 % 10);
  out[3] = static_cast<char>('0' + yy % 10);
  out[4] = '-';
  put2(out + 5, m);
  out[7] = '-';
  put2(out + 8, d);
  out[10] = 'T';
  put2(out + 11, static_cast<unsigned>(secs / 3600));
  out[13] = ':';
  put2(out + 14, static_cast<unsigned>(secs / 60 % 60));
  out[16] = ':';
  put2(out + 17, static_cast<unsigned>(secs % 60));
  out[19] = 'Z';
}

std::string format_rfc3339(unix_seconds t) {
  std::string s(20, ' ');
  format_rfc3339(t, s.data());
  return s;
}

bool parse_rfc3339(const std::string& text, double& seconds_since_epoch) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) <
          6 ||
      n < 19)
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
    return false;
  double frac = 0;
  size_t pos = static_cast<size_t>(n);
  if (pos < text.size() && text[pos] == '.') {
    size_t start = pos;
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9')
      ++pos;
    frac = std::strtod(text.substr(start, pos - start).c_str(), nullptr);
  }
  int64_t offset = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d", &oh, &om) != 2)
      return false;
    offset = (text[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    pos += 6;
  } else {
    return false;
  }
  if (pos != text.size())
    return false;
  int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  seconds_since_epoch =
      static_cast<double>(days * 86400 + h * 3600 + mi * 60 + s - offset) + frac;
  return true;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

} // namespace joule::bench
