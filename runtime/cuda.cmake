# CUDA kernels of runtime/src/kernels/cuda, registered for onnxruntime's CUDAExecutionProvider under the same op names.
# Included by runtime/CMakeLists.txt once the holocron_ort target exists.
#
# ON by default when a CUDA compiler is found. The CUDA sources are test-compiled at configure time first: when that
# fails, the library is built with the CPU kernels only and the configure log says why. The CUDA runtime is linked
# statically, so the one library still loads on machines without CUDA (the CUDA ops then simply never get a node).
option(HOLOCRON_CUDA "Build the CUDA kernels when a CUDA compiler is found" ON)
set(HOLOCRON_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures of the holocron CUDA kernels")

set(_holocron_cuda_dir "${CMAKE_CURRENT_SOURCE_DIR}/src/kernels/cuda")
set(_holocron_cuda_sources "${_holocron_cuda_dir}/add2d.cu" "${_holocron_cuda_dir}/involution2d.cu"
                           "${_holocron_cuda_dir}/lambda_layer.cu")

function(_holocron_cuda_unavailable reason)
  message(STATUS "holocron runtime: CUDA kernels skipped (${reason}); the library has the CPU kernels only")
endfunction()

if(NOT HOLOCRON_CUDA)
  _holocron_cuda_unavailable("HOLOCRON_CUDA=OFF")
  return()
endif()
if(NOT EXISTS "${_holocron_cuda_dir}/launch.h")
  _holocron_cuda_unavailable("runtime/src/kernels/cuda/launch.h not found")
  return()
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  _holocron_cuda_unavailable("no CUDA compiler found")
  return()
endif()
enable_language(CUDA)
find_package(CUDAToolkit)
if(NOT CUDAToolkit_FOUND)
  _holocron_cuda_unavailable("CUDA toolkit (headers, static runtime) not found")
  return()
endif()

# A CUDA compile error must not break the CPU build: compile the kernels once on their own first.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_CUDA_ARCHITECTURES "${HOLOCRON_CUDA_ARCHITECTURES}")  # try_compile passes this one on
unset(_holocron_cuda_compiles CACHE)  # re-check on every configure: the sources may have been fixed
try_compile(
  _holocron_cuda_compiles "${CMAKE_BINARY_DIR}/holocron_cuda_check"
  SOURCES ${_holocron_cuda_sources}
  CMAKE_FLAGS "-DCMAKE_RANLIB=${CMAKE_RANLIB}"
  CUDA_STANDARD 17
  OUTPUT_VARIABLE _holocron_cuda_log)
file(WRITE "${CMAKE_BINARY_DIR}/holocron_cuda_check.log" "${_holocron_cuda_log}")
unset(CMAKE_TRY_COMPILE_TARGET_TYPE)
if(NOT _holocron_cuda_compiles)
  string(LENGTH "${_holocron_cuda_log}" _holocron_log_length)
  math(EXPR _holocron_log_start "${_holocron_log_length} - 3000")
  if(_holocron_log_start LESS 0)
    set(_holocron_log_start 0)
  endif()
  string(SUBSTRING "${_holocron_cuda_log}" ${_holocron_log_start} -1 _holocron_cuda_tail)
  message(WARNING "holocron runtime: the CUDA kernels do not compile; building the CPU kernels only "
                  "(set HOLOCRON_CUDA=OFF to skip this check). Full log: "
                  "${CMAKE_BINARY_DIR}/holocron_cuda_check.log. Compiler output (end):\n${_holocron_cuda_tail}")
  return()
endif()

# The op files (src/ops/*.cc) add each op's CUDA launcher and registration under HOLOCRON_WITH_CUDA.
target_sources(holocron_ort PRIVATE ${_holocron_cuda_sources})
target_compile_definitions(holocron_ort PRIVATE HOLOCRON_WITH_CUDA=1)
target_include_directories(holocron_ort SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
set_target_properties(
  holocron_ort
  PROPERTIES CUDA_ARCHITECTURES "${HOLOCRON_CUDA_ARCHITECTURES}"
             CUDA_RUNTIME_LIBRARY Static
             CUDA_STANDARD 17
             CUDA_STANDARD_REQUIRED ON)
target_compile_options(holocron_ort PRIVATE "$<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<CONFIG:Release>>:-O3>")
message(STATUS "holocron runtime: CUDA kernels enabled (architectures ${HOLOCRON_CUDA_ARCHITECTURES}, "
               "static CUDA runtime ${CUDAToolkit_VERSION})")
