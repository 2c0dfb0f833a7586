// SPDX-License-Identifier: MIT
// percore/ucb1.hpp - Ucb1: the UCB1 multi-armed bandit, for picking one of a
// few discrete settings by the rewards they earn.
//
// UCB1 (Auer, Cesa-Bianchi, Fischer, "Finite-time Analysis of the
// Multiarmed Bandit Problem", Machine Learning 47, 2002): every arm is
// pulled once, in order; after that, the arm with the largest
//
//     mean_i + c * sqrt(ln n / n_i)
//
// is pulled, where mean_i is the arm's mean reward, n_i its pulls, n all
// pulls, and c the exploration weight (sqrt(2) in the paper, for rewards
// in [0, 1]). Its expected regret grows as O(log n): a poor arm is pulled
// about (2 c^2 / gap^2) ln n times in all, so it is tried less and less
// often but never dropped. Ties go to the lowest index, so a run is a pure
// function of its rewards: the tests replay it exactly.
//
// Rewards are taken as they come and the means scaled to [0, 1] when arms
// are compared, by the lowest and highest arm mean so far (min-max
// normalization), so a caller may feed raw figures (operations per second)
// whose range it does not know in advance. Scaling by the means, not by
// single rewards, keeps one outlier (an interval in which the machine
// preempted the program) from squeezing every gap between arms. With all
// means equal, every scaled mean is 0 and only the bonus decides.
//
// Costs: select() is O(arms), a log and a square root per arm; update() is
// O(1). Not thread-safe: one controller owns it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

namespace percore {

class Ucb1 {
public:
    explicit Ucb1(std::size_t arms, double exploration = std::sqrt(2.0)) : arms_(arms), c_(exploration) {
        if (arms == 0) throw std::invalid_argument("percore::Ucb1: needs at least one arm");
        if (!(exploration >= 0) || !std::isfinite(exploration))
            throw std::invalid_argument("percore::Ucb1: exploration must be finite and >= 0");
    }

    // The arm to pull next: the first never-pulled arm, else the largest
    // upper confidence bound (lowest index on ties).
    std::size_t select() const noexcept {
        for (std::size_t i = 0; i < arms_.size(); ++i)
            if (arms_[i].pulls == 0) return i;
        const double ln_n = std::log(static_cast<double>(total_));
        const auto [lo, hi] = mean_range();
        std::size_t best = 0;
        double best_ucb = -std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < arms_.size(); ++i) {
            const double scaled = hi > lo ? (mean(i) - lo) / (hi - lo) : 0.0;
            const double ucb = scaled + c_ * std::sqrt(ln_n / static_cast<double>(arms_[i].pulls));
            if (ucb > best_ucb) best_ucb = ucb, best = i;
        }
        return best;
    }
    // Credits one pull of `arm` with `reward` (any finite value).
    void update(std::size_t arm, double reward) {
        if (arm >= arms_.size()) throw std::out_of_range("percore::Ucb1::update: no such arm");
        if (!std::isfinite(reward)) throw std::invalid_argument("percore::Ucb1::update: reward must be finite");
        arms_[arm].pulls += 1;
        arms_[arm].sum += reward;
        total_ += 1;
        if (reward < lo_) lo_ = reward;
    }

    std::size_t arms() const noexcept { return arms_.size(); }
    std::uint64_t pulls(std::size_t arm) const noexcept { return arms_[arm].pulls; }
    std::uint64_t total_pulls() const noexcept { return total_; }
    // The arm's mean raw reward (0 before its first pull).
    double mean(std::size_t arm) const noexcept {
        return arms_[arm].pulls ? arms_[arm].sum / static_cast<double>(arms_[arm].pulls) : 0.0;
    }
    // The mean scaled to [0, 1] by the lowest and highest arm means (0
    // before the arm's first pull).
    double normalized_mean(std::size_t arm) const noexcept {
        const auto [lo, hi] = mean_range();
        if (arms_[arm].pulls == 0 || !(hi > lo)) return 0.0;
        return (mean(arm) - lo) / (hi - lo);
    }
    // The arm with the best mean among those pulled (0 before any pull).
    std::size_t best() const noexcept {
        std::size_t b = 0;
        for (std::size_t i = 1; i < arms_.size(); ++i)
            if (arms_[i].pulls && (arms_[b].pulls == 0 || mean(i) > mean(b))) b = i;
        return b;
    }
    // The lowest raw reward seen (0 before any pull).
    double lowest() const noexcept { return total_ ? lo_ : 0.0; }
    double exploration() const noexcept { return c_; }

private:
    std::pair<double, double> mean_range() const noexcept {
        double lo = std::numeric_limits<double>::infinity(), hi = -lo;
        for (std::size_t i = 0; i < arms_.size(); ++i)
            if (arms_[i].pulls) lo = std::min(lo, mean(i)), hi = std::max(hi, mean(i));
        return {lo, hi};
    }
    struct Arm {
        std::uint64_t pulls = 0;
        double sum = 0;
    };
    std::vector<Arm> arms_;
    double c_;
    std::uint64_t total_ = 0;
    double lo_ = std::numeric_limits<double>::infinity();  // the lowest single reward
};

}  // namespace percore
