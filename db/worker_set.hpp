#pragma once
// The DB workers an actor hands jobs to, and which of them is running one. Shared by the pool
// and the telemetry writer so the bookkeeping exists once.

#include <cstddef>
#include <optional>
#include <vector>

#include "core/interfaces.hpp"

namespace joule::db {

class worker_set {
public:
  /// Adds a worker (idle); returns its index.
  std::size_t add(db_worker_actor w) {
    workers_.push_back(std::move(w));
    busy_.push_back(false);
    return workers_.size() - 1;
  }
  /// Replaces worker i (it died); the new one is idle.
  void replace(std::size_t i, db_worker_actor w) {
    workers_[i] = std::move(w);
    busy_[i] = false;
  }
  /// The first idle worker, if any.
  std::optional<std::size_t> idle() const {
    for (std::size_t i = 0; i < workers_.size(); ++i)
      if (!busy_[i])
        return i;
    return std::nullopt;
  }
  /// Marks worker i busy and returns it (the handle to send the job to).
  db_worker_actor acquire(std::size_t i) {
    busy_[i] = true;
    return workers_[i];
  }
  /// Marks worker i idle again, unless it was replaced meanwhile by another one.
  void release(std::size_t i, const db_worker_actor& who) {
    if (i < workers_.size() && workers_[i] == who)
      busy_[i] = false;
  }
  /// The index of the worker at `addr`, if it is one of ours.
  std::optional<std::size_t> index_of(const caf::actor_addr& addr) const {
    for (std::size_t i = 0; i < workers_.size(); ++i)
      if (workers_[i].address() == addr)
        return i;
    return std::nullopt;
  }
  std::size_t busy_count() const {
    std::size_t n = 0;
    for (bool b : busy_)
      n += b;
    return n;
  }
  std::size_t size() const { return workers_.size(); }
  const std::vector<db_worker_actor>& all() const { return workers_; }

private:
  std::vector<db_worker_actor> workers_;
  std::vector<bool> busy_;
};

} // namespace joule::db
