#pragma once
// Receivers' SQL (runs inside db_jobs). Tenancy: a receiver belongs to the households of the
// token that created it (owner_households; empty for an unrestricted token). A restricted
// caller sees and changes only receivers whose owners are all among its households; other
// receivers behave as if they did not exist.

#include <optional>
#include <string>
#include <vector>

#include "rules/receiver.hpp"

namespace joule::db {
class session;
} // namespace joule::db

namespace joule::rules {

alert_receiver create_receiver(db::session& s, const alert_receiver& r,
                               const std::vector<std::string>& households);
/// nullopt when unknown (or not visible).
std::optional<alert_receiver> update_receiver(db::session& s, const std::string& id,
                                              const alert_receiver& r,
                                              const std::vector<std::string>& households);
std::optional<alert_receiver> get_receiver(db::session& s, const std::string& id,
                                           const std::vector<std::string>& households);
std::vector<alert_receiver> list_receivers(db::session& s,
                                           const std::vector<std::string>& households);

enum class receiver_delete : std::uint8_t { deleted, missing, in_use };
/// A receiver that rules still name is not deleted (in_use).
receiver_delete delete_receiver(db::session& s, const std::string& id,
                                const std::vector<std::string>& households);

} // namespace joule::rules
