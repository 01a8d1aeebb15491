// fusegrad/nn/fit.hpp — fg::nn::fit: the training loop as Keras writes it, with a progress bar
// on a terminal (plain lines otherwise), validation, early stopping and checkpoints
// SPDX-License-Identifier: MIT
#pragma once

#include "fusegrad/core/parallel.hpp"
#include "fusegrad/nn/checkpoint.hpp"
#include "fusegrad/nn/data.hpp"
#include "fusegrad/nn/module.hpp"
#include "fusegrad/nn/optim.hpp"

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

FG_DIAGNOSTICS_BEGIN

namespace fg::nn {

// One epoch's figures. Accuracy is the fraction of rows whose largest score is the target
// class (NaN when the outputs are not [N, classes] scores of [N] class targets).
struct epoch_log {
  long epoch = 0;  // 1-based
  double loss = 0, accuracy = 0;
  double val_loss = std::numeric_limits<double>::quiet_NaN(), val_accuracy = val_loss;
  double seconds = 0;  // since fit() began
};

class callback {
 public:
  virtual ~callback() = default;
  // After each optimiser step.
  virtual void on_batch_end() {}
  // After each epoch (validation included); return false to stop training.
  virtual bool on_epoch_end(const epoch_log&) { return true; }
};

// Steps a learning-rate schedule (StepLR, CosineLR) after every batch or every epoch.
template <class Schedule> class ScheduleCallback : public callback {
 public:
  explicit ScheduleCallback(Schedule& s, bool per_batch = false) : s_(s), per_batch_(per_batch) {}
  void on_batch_end() override {
    if (per_batch_)
      s_.step();
  }
  bool on_epoch_end(const epoch_log&) override {
    if (!per_batch_)
      s_.step();
    return true;
  }

 private:
  Schedule& s_;
  bool per_batch_;
};

// Stops when the validation loss (the training loss without validation) has not improved by
// more than `min_delta` for `patience` epochs.
class EarlyStopping : public callback {
 public:
  explicit EarlyStopping(long patience = 3, double min_delta = 0)
      : patience_(patience), min_delta_(min_delta) {}
  bool on_epoch_end(const epoch_log& e) override {
    const double v = std::isnan(e.val_loss) ? e.loss : e.val_loss;
    if (v < best_ - min_delta_) {
      best_ = v;
      waited_ = 0;
      return true;
    }
    return ++waited_ < patience_;
  }

 private:
  long patience_;
  double min_delta_;
  double best_ = std::numeric_limits<double>::infinity();
  long waited_ = 0;
};

// Saves a checkpoint after every epoch, or only when the monitored loss improved.
class ModelCheckpoint : public callback {
 public:
  ModelCheckpoint(std::string path, const module& model, const optimizer& opt,
                  bool best_only = false)
      : path_(std::move(path)), model_(model), opt_(opt), best_only_(best_only) {}
  bool on_epoch_end(const epoch_log& e) override {
    const double v = std::isnan(e.val_loss) ? e.loss : e.val_loss;
    if (!best_only_ || v < best_) {
      best_ = std::min(best_, v);
      save_checkpoint(path_, model_, opt_, e.epoch);
    }
    return true;
  }

 private:
  std::string path_;
  const module& model_;
  const optimizer& opt_;
  bool best_only_;
  double best_ = std::numeric_limits<double>::infinity();
};

struct fit_options {
  long epochs = 1;
  DataLoader* validation = nullptr;
  std::vector<callback*> callbacks{};
  long initial_epoch = 0;  // epochs already done (a resumed run)
  // Where progress goes; the bar redraws in place only when this is a terminal.
  std::FILE* out = stdout;
};

namespace detail {

// Correct predictions among the rows of scores [N, classes] for targets [N]; -1 for outputs
// that are not class scores.
inline std::ptrdiff_t correct(const var& scores, const var& targets) {
  if (scores.rank() != 2 || targets.rank() != 1 || scores.shape()[0] != targets.shape()[0])
    return -1;
  const index_t n = scores.shape()[0], k = scores.shape()[1];
  std::ptrdiff_t right = 0;
  for (index_t i = 0; i < n; ++i) {
    index_t best = 0;
    for (index_t j = 1; j < k; ++j)
      best = scores.at(i * k + j) > scores.at(i * k + best) ? j : best;
    right += double(best) == targets.at(i);
  }
  return right;
}

inline std::string clock_text(double s) {
  const long t = long(s + 0.5);
  return t >= 3600 ? dynamic::text(t / 3600, "h", (t / 60) % 60 < 10 ? "0" : "", (t / 60) % 60, "m")
                   : dynamic::text(t / 60, ":", t % 60 < 10 ? "0" : "", t % 60);
}
// "2 threads": what the run uses (fg::set_num_threads).
inline std::string threads_text() {
  const int n = get_num_threads();
  return dynamic::text(n, n == 1 ? " thread" : " threads");
}

}  // namespace detail

// Loss and accuracy (NaN unless the outputs are class scores) of the model over a loader, in
// evaluation mode, nothing recorded.
template <class Loss>
std::pair<double, double> evaluate(module& model, DataLoader& data, Loss loss) {
  no_grad off;
  const bool was = model.training();
  model.eval();
  double total = 0;
  std::ptrdiff_t right = 0;
  index_t seen = 0;
  bool scored = true;
  for (auto [x, y] : data) {
    const var out = model(x);
    const index_t n = x.shape()[0];
    total += loss(out, y).item() * double(n);
    const std::ptrdiff_t c = detail::correct(out, y);
    scored = scored && c >= 0;
    right += c;
    seen += n;
  }
  model.train(was);
  return {total / double(seen),
          scored ? double(right) / double(seen) : std::numeric_limits<double>::quiet_NaN()};
}

// Trains `model` on `train` with loss(outputs, targets) and `opt`, epoch after epoch; returns
// every epoch's figures. Stops early when a callback says so.
template <class Loss>
std::vector<epoch_log> fit(module& model, DataLoader& train, Loss loss, optimizer& opt,
                           fit_options o = {}) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };
#if __has_include(<unistd.h>)
  const bool tty = o.out && isatty(fileno(o.out));
#else
  const bool tty = false;
#endif
  std::vector<epoch_log> history;
  model.train();
  const index_t batches = train.batches();
  for (long epoch = o.initial_epoch + 1; epoch <= o.epochs; ++epoch) {
    const double start = seconds();
    double total = 0;
    std::ptrdiff_t right = 0;
    index_t seen = 0, b = 0;
    bool scored = true;
    train.set_passes(epoch - 1);
    for (auto [x, y] : train) {
      opt.zero_grad();
      const var out = model(x);
      var l = loss(out, y);
      l.backward();
      opt.step();
      for (callback* c : o.callbacks)
        c->on_batch_end();
      const index_t n = x.shape()[0];
      const std::ptrdiff_t c = detail::correct(out.detach(), y);
      total += l.item() * double(n);
      scored = scored && c >= 0;
      right += c;
      seen += n;
      ++b;
      if (tty && o.out) {  // [=====>    ] 120/938 loss 0.4123 acc 85.2% 0:12 < 1:21, 2 threads
        const int width = 30, done = int(width * b / batches);
        const double el = seconds() - start;
        char acc[32] = "";
        if (scored)
          std::snprintf(acc, sizeof acc, " acc %.1f%%", 100.0 * double(right) / double(seen));
        std::fprintf(o.out, "\repoch %ld/%ld [%s%s%s] %lld/%lld loss %.4f%s %s < %s, %s  ", epoch,
                     o.epochs, std::string(std::size_t(done), '=').c_str(), done < width ? ">" : "",
                     std::string(std::size_t(width - done - (done < width)), ' ').c_str(),
                     (long long)b, (long long)batches, total / double(seen), acc,
                     detail::clock_text(el).c_str(),
                     detail::clock_text(el / double(b) * double(batches - b)).c_str(),
                     detail::threads_text().c_str());
        std::fflush(o.out);
      }
    }
    epoch_log e;
    e.epoch = epoch;
    e.loss = total / double(seen);
    e.accuracy = scored ? double(right) / double(seen) : std::numeric_limits<double>::quiet_NaN();
    if (o.validation)
      std::tie(e.val_loss, e.val_accuracy) = evaluate(model, *o.validation, loss);
    e.seconds = seconds();
    if (o.out) {
      std::fprintf(o.out, "%sepoch %ld/%ld: loss %.4f", tty ? "\r\x1b[K" : "", epoch, o.epochs,
                   e.loss);
      if (!std::isnan(e.accuracy))
        std::fprintf(o.out, ", accuracy %.2f%%", 100 * e.accuracy);
      if (o.validation) {
        std::fprintf(o.out, ", validation loss %.4f", e.val_loss);
        if (!std::isnan(e.val_accuracy))
          std::fprintf(o.out, ", validation accuracy %.2f%%", 100 * e.val_accuracy);
      }
      std::fprintf(o.out, " (%s, %s)\n", detail::clock_text(e.seconds).c_str(),
                   detail::threads_text().c_str());
      std::fflush(o.out);
    }
    history.push_back(e);
    bool go_on = true;
    for (callback* c : o.callbacks)
      go_on = c->on_epoch_end(e) && go_on;
    if (!go_on)
      break;
  }
  return history;
}

}  // namespace fg::nn

FG_DIAGNOSTICS_END
