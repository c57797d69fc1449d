// Fuzzes TimerHeap against a reference model (a plain vector): random add, cancel,
// advance-and-run sequences must fire the same entries in the same order, keep the
// same size, and keep slot memory within a bound of the peak live count.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "timers/timer_heap.h"

namespace {

struct ModelEntry {
  int64_t deadline;
  uint64_t seq;
  int id;
  ioloop::TimerHeap::Handle handle;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ioloop::TimerHeap;
  ioloop::fuzz::FuzzInput in(data, size);
  TimerHeap heap;
  std::vector<ModelEntry> model;
  std::vector<TimerHeap::Handle> dead;  // Fired or cancelled handles.
  std::vector<int> fired;
  int64_t now = 0;
  uint64_t seq = 0;
  int next_id = 0;
  size_t peak = 0;
  auto at = [](int64_t ms) { return absl::UnixEpoch() + absl::Milliseconds(ms); };
  while (!in.done()) {
    switch (in.Below(5)) {
      case 0:
      case 1: {  // Add, possibly in the past.
        const int64_t deadline = now + static_cast<int64_t>(in.Below(64)) - 8;
        const int id = next_id++;
        model.push_back(
            {deadline, seq++, id, heap.Add(at(deadline), [&fired, id] { fired.push_back(id); })});
        break;
      }
      case 2: {  // Cancel a live entry.
        if (model.empty()) break;
        const size_t i = in.Below(static_cast<uint32_t>(model.size()));
        IOLOOP_FUZZ_CHECK(heap.Cancel(model[i].handle));
        dead.push_back(model[i].handle);
        model.erase(model.begin() + static_cast<long>(i));
        break;
      }
      case 3: {  // Cancel a dead handle: must be a no-op.
        if (dead.empty()) break;
        IOLOOP_FUZZ_CHECK(!heap.Cancel(dead[in.Below(static_cast<uint32_t>(dead.size()))]));
        break;
      }
      case 4: {  // Advance and run what is due.
        now += in.Below(32);
        std::vector<ModelEntry> due;
        std::vector<ModelEntry> rest;
        for (const ModelEntry& e : model) (e.deadline <= now ? due : rest).push_back(e);
        std::sort(due.begin(), due.end(), [](const ModelEntry& a, const ModelEntry& b) {
          return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
        });
        fired.clear();
        heap.TakeDue(at(now));
        TimerHeap::Callback cb;
        while (heap.PopTaken(cb)) cb();
        IOLOOP_FUZZ_CHECK(fired.size() == due.size());
        for (size_t i = 0; i < due.size(); ++i) IOLOOP_FUZZ_CHECK(fired[i] == due[i].id);
        for (const ModelEntry& e : due) dead.push_back(e.handle);
        model = rest;
        break;
      }
    }
    peak = std::max(peak, model.size());
    IOLOOP_FUZZ_CHECK(heap.size() == model.size());
    IOLOOP_FUZZ_CHECK(heap.SlotCapacityForTesting() <= 2 * peak + 64);
    if (dead.size() > 256) dead.erase(dead.begin(), dead.begin() + 128);
  }
  return 0;
}
