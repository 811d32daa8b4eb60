// Asio's TLS support compiled once (separate compilation, like http/asio_impl.cpp, which
// does not include the ssl parts).
#include <boost/asio/ssl/impl/src.hpp>
