// Progress and cancel for the loops below the Session API.
//
// Session entry points take a ProgressFn and a cancel flag (api.h). The loops that take the time
// with a 7B model sit below headers that pass no callback: converting each weight tensor
// (weights.cpp), each CLIP layer (vision.cpp), the load warm-up (llava.cpp). A ProgressScope
// installs the pair for the calling thread; those loops call progress_step() at each tensor or
// layer, which reports the step mapped into the scope's [lo, hi] share of the bar and throws
// dl::Cancelled once the flag is set. Without a scope progress_step does nothing, so the functions
// stay usable on their own (tests, the CLI's make-model). Torch-free and header-only.
#pragma once

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>

#include "core/api.h"

namespace dl {

class ProgressScope {
public:
    // Reports go to `progress` as lo + (hi - lo) * step fraction; `cancel` may be null.
    ProgressScope(ProgressFn progress, const std::atomic<bool>* cancel, double lo = 0, double hi = 1)
        : progress_(std::move(progress)), cancel_(cancel), lo_(lo), hi_(hi), outer_(current()) {
        current() = this;
    }
    // A part [lo, hi] of the enclosing scope's range (same callback and flag); inert without one.
    ProgressScope(double lo, double hi) : outer_(current()) {
        if (outer_) {
            progress_ = outer_->progress_;
            cancel_ = outer_->cancel_;
            lo_ = outer_->lo_ + (outer_->hi_ - outer_->lo_) * lo;
            hi_ = outer_->lo_ + (outer_->hi_ - outer_->lo_) * hi;
        }
        current() = this;
    }
    ~ProgressScope() { current() = outer_; }
    ProgressScope(const ProgressScope&) = delete;
    ProgressScope& operator=(const ProgressScope&) = delete;

    // The innermost scope of this thread, or nullptr.
    static ProgressScope*& current() {
        static thread_local ProgressScope* scope = nullptr;
        return scope;
    }

    // `done` of `total` units of `stage` finished: throws dl::Cancelled if the flag is set, else reports.
    void step(double done, double total, const std::string& stage) const {
        if (cancel_ && cancel_->load()) throw Cancelled();
        const double f = total > 0 ? std::clamp(done / total, 0.0, 1.0) : 1.0;
        if (progress_) progress_(lo_ + (hi_ - lo_) * f, stage);
    }
    const std::atomic<bool>* cancel_flag() const { return cancel_; }

private:
    ProgressFn progress_;
    const std::atomic<bool>* cancel_ = nullptr;
    double lo_ = 0, hi_ = 1;
    ProgressScope* outer_ = nullptr;
};

// Reports to this thread's innermost ProgressScope (see above); does nothing without one.
inline void progress_step(double done, double total, const std::string& stage) {
    if (const ProgressScope* s = ProgressScope::current()) s->step(done, total, stage);
}

// The cancel flag of this thread's innermost ProgressScope, for code that checks it itself
// (run_layers); nullptr without a scope.
inline const std::atomic<bool>* progress_cancel_flag() {
    const ProgressScope* s = ProgressScope::current();
    return s ? s->cancel_flag() : nullptr;
}

}  // namespace dl
