# ftb quick start:
#   make run    install dependencies, build, run the main job on the embedded default
#               (train, answer, grade; reports in ftb-report/)
#   make test   install dependencies, build, run every test (ctest)
# Other targets: build, asan-test (ASan+UBSan build, unit tests), bench, clean.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
CTEST_ARGS ?=

.PHONY: all deps deps-test configure build run test asan-test bench clean

all: build

deps:
	@scripts/install-deps.sh

deps-test:
	@scripts/install-deps.sh --test

configure:
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null

build: deps configure
	@cmake --build $(BUILD) --target ftb -j $(JOBS)

# The main job: the embedded default campaign (campaigns/default.yaml), run on
# this machine; reports in ftb-report/. Run again to resume (same .ftb-state).
run: build
	$(BUILD)/cli/ftb run --state .ftb-state --out ftb-report

test: deps-test configure
	@cmake --build $(BUILD) -j $(JOBS)
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Unit tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-test: deps-test
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFTB_SANITIZE=ON \
	  -DFTB_BUILD_BENCH=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -L unit

# Benchmarks (see docs/benchmarks.md): Release build in build-bench.
bench:
	@scripts/install-deps.sh --bench
	@cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DFTB_BUILD_TESTS=OFF >/dev/null
	@cmake --build build-bench -j $(JOBS)
	build-bench/bench/scheduler_bench

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
