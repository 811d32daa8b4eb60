#include "sim/copy_writer.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace joule::bench {

namespace {

constexpr size_t flush_bytes = 1 << 20;
// PostgreSQL's timestamp epoch (2000-01-01T00:00:00Z) in Unix seconds.
constexpr int64_t pg_epoch_unix = 946684800;


// Big-endian writers into a buffer the caller has sized; return the next write position.
char* put_u16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
  return p + 2;
}

char* put_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<char>(v >> (24 - 8 * i));
  return p + 4;
}

char* put_u64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<char>(v >> (56 - 8 * i));
  return p + 8;
}

char* put_f64(char* p, double d) {
  uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  return put_u64(p, bits);
}

// One tuple: field count + five (length, value) pairs.
constexpr size_t row_bytes = 2 + (4 + 8) + 2 * (4 + 16) + 2 * (4 + 8);

std::string result_error(PGresult* r, PGconn* c) {
  const char* msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
  return msg && *msg ? msg : PQerrorMessage(c);
}

} // namespace

void telemetry_copy_writer::pg_conn_deleter::operator()(void* conn) const {
  PQfinish(static_cast<PGconn*>(conn));
}

telemetry_copy_writer::telemetry_copy_writer(const std::string& conninfo)
    : conn_(PQconnectdb(conninfo.c_str())) {
  auto* c = static_cast<PGconn*>(conn_.get());
  if (!c || PQstatus(c) != CONNECTION_OK)
    throw std::runtime_error(std::string("connect: ") + (c ? PQerrorMessage(c) : "out of memory"));
  buffer_.resize(flush_bytes + 1024);
  // Loader session: a lost commit is re-done by running the loader again.
  exec("SET synchronous_commit = off");
}

telemetry_copy_writer::~telemetry_copy_writer() {
  auto* c = static_cast<PGconn*>(conn_.get());
  if (in_copy_ && c) {
    PQputCopyEnd(c, "aborted by client");
    while (PGresult* r = PQgetResult(c))
      PQclear(r);
  }
}

void telemetry_copy_writer::exec(const std::string& sql) {
  auto* c = static_cast<PGconn*>(conn_.get());
  PGresult* r = PQexec(c, sql.c_str());
  auto status = PQresultStatus(r);
  std::string error = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? "" : result_error(r, c);
  PQclear(r);
  if (!error.empty())
    throw std::runtime_error(sql.substr(0, 60) + ": " + error);
}

void telemetry_copy_writer::begin() {
  exec("BEGIN");
  auto* c = static_cast<PGconn*>(conn_.get());
  PGresult* r = PQexec(c, "COPY telemetry (ts, device_id, household_id, power_w, energy_wh) "
                          "FROM STDIN (FORMAT binary)");
  bool ok = PQresultStatus(r) == PGRES_COPY_IN;
  std::string error = ok ? "" : result_error(r, c);
  PQclear(r);
  if (!ok)
    throw std::runtime_error("COPY telemetry: " + error);
  in_copy_ = true;
  static const char signature[] = "PGCOPY\n\377\r\n";
  std::memcpy(buffer_.data(), signature, 11);
  char* p = put_u32(buffer_.data() + 11, 0); // flags
  p = put_u32(p, 0);                         // header extension length
  used_ = static_cast<size_t>(p - buffer_.data());
}

void telemetry_copy_writer::add(unix_seconds ts, const uuid& device_id, const uuid& household_id,
                                double power_w, double energy_wh) {
  if (used_ + row_bytes > buffer_.size())
    flush();
  char* p = buffer_.data() + used_;
  p = put_u16(p, 5);
  p = put_u32(p, 8);
  p = put_u64(p, static_cast<uint64_t>((ts - pg_epoch_unix) * 1'000'000));
  p = put_u32(p, 16);
  std::memcpy(p, device_id.bytes.data(), 16);
  p = put_u32(p + 16, 16);
  std::memcpy(p, household_id.bytes.data(), 16);
  p = put_u32(p + 16, 8);
  p = put_f64(p, power_w);
  p = put_u32(p, 8);
  p = put_f64(p, energy_wh);
  used_ = static_cast<size_t>(p - buffer_.data());
  if (used_ >= flush_bytes)
    flush();
}

void telemetry_copy_writer::check_copy(int rc, const char* what) {
  if (rc != 1)
    throw std::runtime_error(std::string(what) + ": " +
                             PQerrorMessage(static_cast<PGconn*>(conn_.get())));
}

void telemetry_copy_writer::flush() {
  if (used_ == 0)
    return;
  check_copy(PQputCopyData(static_cast<PGconn*>(conn_.get()), buffer_.data(),
                           static_cast<int>(used_)),
             "PQputCopyData");
  used_ = 0;
}

uint64_t telemetry_copy_writer::commit() {
  auto* c = static_cast<PGconn*>(conn_.get());
  if (used_ + 2 > buffer_.size())
    flush();
  used_ = static_cast<size_t>(put_u16(buffer_.data() + used_, 0xffff) - buffer_.data()); // trailer
  flush();
  in_copy_ = false;
  check_copy(PQputCopyEnd(c, nullptr), "PQputCopyEnd");
  uint64_t rows = 0;
  std::string error;
  while (PGresult* r = PQgetResult(c)) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      error = result_error(r, c);
    else
      rows += std::strtoull(PQcmdTuples(r), nullptr, 10);
    PQclear(r);
  }
  if (!error.empty()) {
    exec("ROLLBACK");
    throw std::runtime_error("COPY telemetry: " + error);
  }
  exec("COMMIT");
  return rows;
}

} // namespace joule::bench
