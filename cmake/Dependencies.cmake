# Dependencies.cmake - probe moebench's dependencies and announce each in one line.
#
# Required: cJSON, OpenBLAS (CBLAS), OpenMP; Check when BUILD_TESTING.
# Optional, each AUTO (default: use when found), ON (fail when missing) or OFF:
#   MOEBENCH_CUDA (nvcc, cudart, cuBLASLt), MOEBENCH_NCCL, MOEBENCH_MPI, MOEBENCH_PAPI.

find_package(PkgConfig REQUIRED)

# moebench_optional(NAME FOUND VERSION WHY) turns a probe result into the option's
# verdict: sets MOEBENCH_HAVE_<NAME>, prints one line, fails for ON when missing.
function(moebench_optional name found version why)
  set(opt "${MOEBENCH_${name}}")
  if(opt STREQUAL "OFF")
    message(STATUS "${name}: off (MOEBENCH_${name}=OFF)")
    set(MOEBENCH_HAVE_${name} 0 PARENT_SCOPE)
  elseif(found)
    message(STATUS "${name} ${version}: found")
    set(MOEBENCH_HAVE_${name} 1 PARENT_SCOPE)
  elseif(opt STREQUAL "ON")
    message(FATAL_ERROR "${name}: MOEBENCH_${name}=ON but ${why}")
  else()
    message(STATUS "${name}: not found (${why}), built without it")
    set(MOEBENCH_HAVE_${name} 0 PARENT_SCOPE)
  endif()
endfunction()

foreach(dep CUDA NCCL MPI PAPI)
  set(MOEBENCH_${dep} AUTO CACHE STRING "Use ${dep}: AUTO, ON or OFF")
  set_property(CACHE MOEBENCH_${dep} PROPERTY STRINGS AUTO ON OFF)
  if(NOT MOEBENCH_${dep} MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "MOEBENCH_${dep} must be AUTO, ON or OFF, not '${MOEBENCH_${dep}}'")
  endif()
endforeach()

# ---- required ----
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
message(STATUS "cJSON ${CJSON_VERSION}: found")
pkg_check_modules(OPENBLAS IMPORTED_TARGET openblas)
if(NOT OPENBLAS_FOUND)
  message(FATAL_ERROR "OpenBLAS not found: install libopenblas-dev (make deps does)")
endif()
message(STATUS "OpenBLAS ${OPENBLAS_VERSION}: found")
find_package(OpenMP REQUIRED COMPONENTS C)
if(BUILD_TESTING)
  pkg_check_modules(CHECK REQUIRED IMPORTED_TARGET check)
  message(STATUS "Check ${CHECK_VERSION}: found")
endif()

# ---- CUDA ----
set(cuda_found FALSE)
set(cuda_version "")
set(cuda_why "nvcc not found (install the CUDA toolkit or set CMAKE_CUDA_COMPILER)")
if(NOT MOEBENCH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # NOTE: explicit architectures: `native` fails on a machine without a GPU.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a CACHE STRING "CUDA architectures (90a: Hopper with wgmma)")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit)
    if(CUDAToolkit_FOUND AND TARGET CUDA::cublasLt)
      set(cuda_found TRUE)
      set(cuda_version "${CUDAToolkit_VERSION}")
    else()
      set(cuda_why "CUDA toolkit or cuBLASLt libraries not found")
    endif()
  endif()
endif()
moebench_optional(CUDA "${cuda_found}" "${cuda_version} (archs ${CMAKE_CUDA_ARCHITECTURES})" "${cuda_why}")

# ---- C++, for one test: tests/attention_emu.cpp runs the CUDA attention kernels on the
# host (a GPU-free check of their index math); it needs the CUDA headers, so it follows CUDA.
set(MOEBENCH_HAVE_CXX_EMU 0)
if(MOEBENCH_HAVE_CUDA AND BUILD_TESTING)
  include(CheckLanguage)
  check_language(CXX)
  if(CMAKE_CXX_COMPILER)
    enable_language(CXX)
    set(MOEBENCH_HAVE_CXX_EMU 1)
    message(STATUS "C++ ${CMAKE_CXX_COMPILER_VERSION}: found (CUDA attention kernels emulated on the host in tests)")
  else()
    message(STATUS "C++: not found, the host emulation of the CUDA attention kernels is not built")
  endif()
endif()

# ---- NCCL ----
set(nccl_found FALSE)
set(nccl_version "")
set(nccl_why "nccl.h or libnccl not found (set NCCL_ROOT)")
if(NOT MOEBENCH_NCCL STREQUAL "OFF")
  if(NOT MOEBENCH_HAVE_CUDA)
    set(nccl_why "needs CUDA, which is off")
  else()
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} ENV NCCL_ROOT ${CUDAToolkit_INCLUDE_DIRS}
              PATH_SUFFIXES include)
    find_library(NCCL_LIBRARY nccl HINTS ${NCCL_ROOT} ENV NCCL_ROOT ${CUDAToolkit_LIBRARY_DIR}
                 PATH_SUFFIXES lib lib64)
    if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
      file(STRINGS "${NCCL_INCLUDE_DIR}/nccl.h" nccl_defs REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
      string(REGEX REPLACE ".*NCCL_MAJOR ([0-9]+).*NCCL_MINOR ([0-9]+).*NCCL_PATCH ([0-9]+).*"
             "\\1.\\2.\\3" nccl_version "${nccl_defs}")
      set(nccl_found TRUE)
    endif()
  endif()
endif()
moebench_optional(NCCL "${nccl_found}" "${nccl_version}" "${nccl_why}")

# ---- MPI ----
set(mpi_found FALSE)
if(NOT MOEBENCH_MPI STREQUAL "OFF")
  find_package(MPI QUIET COMPONENTS C)
  set(mpi_found ${MPI_C_FOUND})
endif()
moebench_optional(MPI "${mpi_found}" "${MPI_C_VERSION}"
                  "no MPI C compiler wrapper or library (install libopenmpi-dev); single-rank only")

# ---- PAPI ----
set(papi_found FALSE)
if(NOT MOEBENCH_PAPI STREQUAL "OFF")
  pkg_check_modules(PAPI QUIET IMPORTED_TARGET papi)
  set(papi_found ${PAPI_FOUND})
endif()
moebench_optional(PAPI "${papi_found}" "${PAPI_VERSION}"
                  "papi.pc not found (install libpapi-dev); counters recorded as unavailable")
