// SPDX-License-Identifier: MIT
// percore-demo: the main job. For now, the shared-versus-per-CPU comparison:
// the same adds through one shared std::atomic and through percore::Counter,
// at 1, 2, 4 and 8 threads, with exact totals checked.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <thread>

#include "common/scaling.hpp"
#include "percore/shard.hpp"

int main(int argc, char** argv) {
    CLI::App app{"percore-demo: shared atomic versus per-CPU counter, side by side"};
    std::vector<int> threads{1, 2, 4, 8};
    std::uint64_t ops = 40'000'000;
    int reps = 5;
    app.add_option("-t,--threads", threads, "thread counts to run")->capture_default_str()->check(CLI::Range(1, 4096));
    app.add_option("-n,--ops", ops, "total adds per run, split across threads")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
    app.add_option("-r,--reps", reps, "repetitions per point (median reported)")->capture_default_str()->check(CLI::Range(1, 100));
    CLI11_PARSE(app, argc, argv);

    std::printf("percore-demo: %u CPUs online, shard backend %s, %zu shards\n",
                std::thread::hardware_concurrency(), percore::backend_name(), percore::max_shards());
    std::printf("%llu adds per run, median of %d runs\n\n", static_cast<unsigned long long>(ops), reps);
    std::fflush(stdout);  // progress goes to stderr
    auto rows = percore::tools::compare_scaling(threads, ops, reps, true);

    const bool exact = percore::tools::print_scaling_table(rows);
    std::printf("\nper-CPU over shared at each thread count:");
    for (std::size_t i = 0; i + 1 < rows.size(); i += 2)
        std::printf("  %dT %.1fx", rows[i].threads, rows[i + 1].ops_per_sec / rows[i].ops_per_sec);
    std::printf("\n");
    if (!exact) {
        std::fprintf(stderr, "percore-demo: a total did not match what was added\n");
        return 1;
    }
    return 0;
}
