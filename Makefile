# Thin wrapper over CMake: the README's two commands.
#
#   make run    install what is missing (Debian 12, root), build, run `moebench run`
#   make test   install, build, run every test; then the sanitizer build's CPU tests
#
# Other targets: deps, build, build-asan, clean. BUILD=dir and CMAKE_ARGS=... override.

BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_ARGS ?=
JOBS ?= $(shell nproc)

# Debian packages moebench needs: compilers and build tools, the required libraries
# (cJSON, OpenBLAS, Check) and the optional ones it uses when present (MPI, PAPI).
DEBS = build-essential cmake ninja-build pkg-config git python3 \
       libcjson-dev libopenblas-dev check libsubunit-dev \
       libopenmpi-dev openmpi-bin libpapi-dev gnuplot-nox fortunes

.PHONY: deps build build-asan run test clean

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "dependencies: all installed"; fi

build: deps
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)

# NOTE: the sanitizer build leaves CUDA out: the CUDA runtime and AddressSanitizer
# disagree about the address space, and the CPU code is what the sanitizers check.
build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DMOEBENCH_SANITIZE=ON -DMOEBENCH_CUDA=OFF \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	./$(BUILD)/moebench run

test: build build-asan
	cd $(BUILD) && ctest --verbose
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --verbose

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
