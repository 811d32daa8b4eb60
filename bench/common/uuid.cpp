#include "common/uuid.hpp"

namespace joule::bench {

std::string uuid::to_string() const {
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      s.push_back('-');
    s.push_back(hex[bytes[i] >> 4]);
    s.push_back(hex[bytes[i] & 0xf]);
  }
  return s;
}

bool uuid::parse(const std::string& text, uuid& out) {
  if (text.size() != 36)
    return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  size_t b = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-')
        return false;
      ++i;
      continue;
    }
    int h = nibble(text[i]), l = nibble(text[i + 1]);
    if (h < 0 || l < 0)
      return false;
    out.bytes[b++] = static_cast<uint8_t>(h << 4 | l);
    i += 2;
  }
  return true;
}

uuid uuid::from_hashes(uint64_t hi, uint64_t lo) {
  uuid u;
  for (int i = 0; i < 8; ++i) {
    u.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    u.bytes[static_cast<size_t>(8 + i)] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0f) | 0x40); // version 4
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3f) | 0x80); // RFC 4122 variant
  return u;
}

} // namespace joule::bench
