# holocron's torch op library (libholocron_torch.so, installed into holocron/ops): the holocron::* schemas and
# their CPU kernels, the kernel sources onnxruntime uses, through torch's stable C ABI only (torch/csrc/stable).
# It is built against the headers of an installed torch >= 2.13 with TORCH_TARGET_VERSION 2.13, so the one build
# loads on every torch release from 2.13 on (pyproject's range is 2.13 and 2.14).
#
# The library is optional: without a C++ compiler or an importable torch >= 2.13 the configure step says what is
# missing, and holocron.ops runs its pure-torch implementation instead.
#
# pip builds in an isolated environment, where torch is not importable: HOLOCRON_TORCH_PYTHON (a CMake variable or
# an environment variable) names an interpreter whose torch provides the headers (`make setup` sets it to .venv's);
# without it, the build's own interpreter is asked (which works with `pip install --no-build-isolation`).
include(CheckLanguage)

option(HOLOCRON_BUILD_TORCH_OPS "Build the torch op library libholocron_torch.so" ON)

if(NOT HOLOCRON_BUILD_TORCH_OPS)
  message(STATUS "holocron torch ops: HOLOCRON_BUILD_TORCH_OPS=OFF, torch op library skipped")
  return()
endif()
if(DEFINED HOLOCRON_BUILD_RUNTIME AND NOT HOLOCRON_BUILD_RUNTIME)
  message(STATUS "holocron torch ops: HOLOCRON_BUILD_RUNTIME=OFF (no kernel builds), torch op library skipped")
  return()
endif()

check_language(CXX)
if(NOT CMAKE_CXX_COMPILER)
  message(WARNING "holocron torch ops: no C++ compiler found; torch op library skipped (holocron.ops uses its "
                  "pure-torch implementation). Install one and reinstall.")
  return()
endif()
enable_language(CXX)
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  message(WARNING "holocron torch ops: the kernels need GCC or Clang (vector extensions); found "
                  "${CMAKE_CXX_COMPILER_ID}; torch op library skipped.")
  return()
endif()

if(NOT HOLOCRON_TORCH_PYTHON AND DEFINED ENV{HOLOCRON_TORCH_PYTHON})
  set(HOLOCRON_TORCH_PYTHON "$ENV{HOLOCRON_TORCH_PYTHON}")
endif()
if(NOT HOLOCRON_TORCH_PYTHON)
  find_package(Python COMPONENTS Interpreter)
  set(HOLOCRON_TORCH_PYTHON "${Python_EXECUTABLE}")
endif()
set(HOLOCRON_TORCH_PYTHON "${HOLOCRON_TORCH_PYTHON}" CACHE FILEPATH "Python interpreter whose torch gives the headers")

string(
  CONCAT _holocron_torch_howto
  "set HOLOCRON_TORCH_PYTHON to a Python whose torch (>= 2.13) is installed and reinstall (`make setup` does), or "
  "install with `pip install --no-build-isolation` next to torch")
if(NOT HOLOCRON_TORCH_PYTHON)
  message(STATUS "holocron torch ops: no Python interpreter to ask for torch; torch op library skipped "
                 "(holocron.ops uses its pure-torch implementation). To build it, ${_holocron_torch_howto}.")
  return()
endif()
# pip's isolated build sets PYTHONPATH to hide every other site-packages from any interpreter: unset it for the probe.
execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env --unset=PYTHONPATH --unset=PYTHONNOUSERSITE --unset=PYTHONHOME
          "${HOLOCRON_TORCH_PYTHON}" -c
          "import os, torch; print(torch.__version__.split('+')[0]); print(os.path.dirname(torch.__file__))"
  OUTPUT_VARIABLE _holocron_torch_probe
  ERROR_VARIABLE _holocron_torch_err
  RESULT_VARIABLE _holocron_torch_rc
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _holocron_torch_rc EQUAL 0)
  string(STRIP "${_holocron_torch_err}" _holocron_torch_err)
  string(REGEX REPLACE ".*\n" "" _holocron_torch_err "${_holocron_torch_err}")
  message(STATUS "holocron torch ops: ${HOLOCRON_TORCH_PYTHON} cannot import torch (${_holocron_torch_err}); torch "
                 "op library skipped (holocron.ops uses its pure-torch implementation). To build it, "
                 "${_holocron_torch_howto}.")
  return()
endif()
string(REPLACE "\n" ";" _holocron_torch_probe "${_holocron_torch_probe}")
list(GET _holocron_torch_probe 0 _holocron_torch_version)
list(GET _holocron_torch_probe 1 _holocron_torch_dir)
set(_holocron_torch_include "${_holocron_torch_dir}/include")
set(_holocron_torch_cpu "${_holocron_torch_dir}/lib/libtorch_cpu.so")
if(_holocron_torch_version VERSION_LESS 2.13)
  message(STATUS "holocron torch ops: torch ${_holocron_torch_version} at ${_holocron_torch_dir} is older than 2.13 "
                 "(the stable ABI this library targets); torch op library skipped. To build it, "
                 "${_holocron_torch_howto}.")
  return()
endif()
if(NOT EXISTS "${_holocron_torch_include}/torch/csrc/stable/library.h" OR NOT EXISTS "${_holocron_torch_cpu}")
  message(STATUS "holocron torch ops: torch ${_holocron_torch_version} at ${_holocron_torch_dir} lacks "
                 "include/torch/csrc/stable/library.h or lib/libtorch_cpu.so; torch op library skipped.")
  return()
endif()

# TORCH_TARGET_VERSION 2.13 (0x020D000000000000: major << 56 | minor << 48): only the stable API of torch 2.13 is
# used (the headers refuse newer calls), so one build loads on 2.13 and later; TORCH_STABLE_ONLY: the unstable C++
# API (ATen, c10) cannot be included by mistake.
set(_holocron_torch_defines TORCH_TARGET_VERSION=0x020D000000000000ULL TORCH_STABLE_ONLY)
set(_holocron_kernels "${CMAKE_CURRENT_LIST_DIR}/src")

# The op glue is compiled once at configure time: headers of a torch whose stable API this code does not fit make
# the library skip, with the compiler's words, instead of failing the whole install.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
unset(_holocron_torch_compiles CACHE)  # before CMake 3.25 the result is cached: probe the torch of this configure
list(TRANSFORM _holocron_torch_defines PREPEND "-D" OUTPUT_VARIABLE _holocron_torch_flags)
try_compile(
  _holocron_torch_compiles "${CMAKE_BINARY_DIR}/holocron-torch-probe"
  SOURCES "${_holocron_kernels}/torch/library.cc"
  CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${_holocron_kernels};${_holocron_torch_include}"
  COMPILE_DEFINITIONS ${_holocron_torch_flags}
  CXX_STANDARD 17
  CXX_EXTENSIONS ON
  OUTPUT_VARIABLE _holocron_torch_compile_log)
unset(CMAKE_TRY_COMPILE_TARGET_TYPE)
if(NOT _holocron_torch_compiles)
  string(REGEX MATCH "[^\n]*error[^\n]*" _holocron_torch_first_error "${_holocron_torch_compile_log}")
  message(WARNING "holocron torch ops: runtime/src/torch/library.cc does not compile against torch "
                  "${_holocron_torch_version}'s stable API (${_holocron_torch_include}): ${_holocron_torch_first_error}; "
                  "torch op library skipped (holocron.ops uses its pure-torch implementation).")
  return()
endif()
message(STATUS "holocron torch ops: torch ${_holocron_torch_version} headers ${_holocron_torch_include}, "
               "stable ABI target 2.13")

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release)
endif()

add_library(
  holocron_torch MODULE
  "${_holocron_kernels}/kernels/cpu/cpu_features.cc"
  "${_holocron_kernels}/kernels/cpu/add2d.cc"
  "${_holocron_kernels}/kernels/cpu/involution2d.cc"
  "${_holocron_kernels}/kernels/cpu/lambda_layer.cc"
  "${_holocron_kernels}/torch/library.cc")
target_include_directories(holocron_torch PRIVATE "${_holocron_kernels}")
target_include_directories(holocron_torch SYSTEM PRIVATE "${_holocron_torch_include}")
target_compile_definitions(holocron_torch PRIVATE ${_holocron_torch_defines})
target_compile_features(holocron_torch PRIVATE cxx_std_17)
set_target_properties(
  holocron_torch
  PROPERTIES CXX_EXTENSIONS ON # GNU vector extensions
             CXX_VISIBILITY_PRESET hidden
             VISIBILITY_INLINES_HIDDEN ON
             POSITION_INDEPENDENT_CODE ON)
target_compile_options(holocron_torch PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wno-psabi>"
                                              "$<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CONFIG:Release>>:-O3>")
# The stable ABI's functions (aoti_torch_*, torch_*) live in libtorch_cpu.so: linked by its soname, without an
# rpath, it resolves to the libtorch_cpu.so the process has loaded already (import torch, or a libtorch program).
target_link_libraries(holocron_torch PRIVATE "${_holocron_torch_cpu}")
if(NOT APPLE AND NOT WIN32)
  target_link_options(holocron_torch PRIVATE "LINKER:--no-undefined" "LINKER:--as-needed"
                      "LINKER:-rpath-link,${_holocron_torch_dir}/lib")
  set_target_properties(holocron_torch PROPERTIES SKIP_BUILD_RPATH ON INSTALL_RPATH "")
endif()

install(
  TARGETS holocron_torch
  LIBRARY DESTINATION holocron/ops
  RUNTIME DESTINATION holocron/ops)
