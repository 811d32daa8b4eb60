#include "rules/alert_store.hpp"

#include <memory>

#include <caf/typed_event_based_actor.hpp>

#include "rules/rule_sql.hpp"

namespace joule::rules {
namespace {

// Out of line on purpose: with the outcome built and delivered inline inside CAF's handler
// templates, GCC 12 at -O3 reports a false maybe-uninitialized on eval_state's strings.
[[gnu::noinline]] void deliver_failure(caf::typed_response_promise<save_outcome>& rp,
                                       std::string why) {
  save_outcome out;
  out.kind = save_outcome::failed;
  out.error = std::move(why);
  rp.deliver(std::move(out));
}

} // namespace

alert_store_actor::behavior_type
alert_store(alert_store_actor::stateful_pointer<alert_store_state> self,
            std::function<db_pool_actor()> pool, std::function<void()> nudge,
            std::chrono::milliseconds job_timeout) {
  self->state.pool = std::move(pool);
  self->state.nudge = std::move(nudge);
  self->state.job_timeout = job_timeout;
  return {
      [self](state_change& change) -> caf::typed_response_promise<save_outcome> {
        auto rp = self->make_response_promise<save_outcome>();
        auto pool = self->state.pool();
        if (!pool) {
          ++self->state.failures;
          deliver_failure(rp, "the database pool is not running");
          return rp;
        }
        auto result = std::make_shared<save_result>();
        const bool has_notes = !change.notes.empty();
        db_job job;
        job.label = "alerts.save_state";
        job.timeout = self->state.job_timeout;
        // Safe to rerun after a lost connection: the seq guard turns a second apply into a
        // conflict instead of a duplicate notification.
        job.retry_on_disconnect = true;
        job.run = [change = std::move(change), result](db::session& s) {
          *result = save_state(s, change.rule_id, change.expected_seq, change.next, change.notes);
          return std::any{};
        };
        self->request(pool, job.timeout + std::chrono::milliseconds(500), std::move(job))
            .then(
                [self, rp, result, has_notes](db_done&) mutable {
                  auto& st = self->state;
                  if (!result->applied) {
                    ++st.conflicts;
                    rp.deliver(save_outcome{save_outcome::conflict, result->current, {}});
                    return;
                  }
                  ++st.saves;
                  rp.deliver(save_outcome{save_outcome::applied, result->current, {}});
                  if (has_notes && st.nudge)
                    st.nudge();
                },
                [self, rp](caf::error& err) mutable {
                  ++self->state.failures;
                  deliver_failure(rp, failure_of(err).message);
                });
        return rp;
      },
  };
}

} // namespace joule::rules
