#pragma once
// Silences' SQL (runs inside db_jobs). Tenancy as for receivers: a silence belongs to the
// households of the token that created it; a restricted token must match on one of its own
// households and sees only its silences.

#include <optional>
#include <string>
#include <vector>

#include "rules/silence.hpp"

namespace joule::db {
class session;
} // namespace joule::db

namespace joule::rules {

alert_silence create_silence(db::session& s, const alert_silence& si,
                             const std::vector<std::string>& households);
std::vector<alert_silence> list_silences(db::session& s,
                                         const std::vector<std::string>& households);
std::optional<alert_silence> get_silence(db::session& s, const std::string& id,
                                         const std::vector<std::string>& households);
/// False when unknown (or not visible). Alerts it held back are released by the janitor.
bool delete_silence(db::session& s, const std::string& id,
                    const std::vector<std::string>& households);

} // namespace joule::rules
