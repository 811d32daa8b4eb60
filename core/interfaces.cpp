#include "core/interfaces.hpp"

namespace joule {

const char* to_string(cache_outcome o) {
  switch (o) {
    case cache_outcome::hit:
      return "hit";
    case cache_outcome::miss:
      return "miss";
    case cache_outcome::bypass:
      return "bypass";
  }
  return "bypass";
}

} // namespace joule
