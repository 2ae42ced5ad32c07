// Loads holocron's torch op library and a TorchScript archive, runs it on the tensors of an input file and writes
// the outputs: a libtorch program with no Python (tests/ops/test_libtorch_program.py builds and runs it).
//
//   run_archive LIBRARY ARCHIVE INPUTS OUTPUTS
//
// INPUTS holds a tuple of tensors pickled by torch.save; OUTPUTS gets the outputs (a tuple of tensors), the same way.
#include <dlfcn.h>
#include <torch/script.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: run_archive LIBRARY ARCHIVE INPUTS OUTPUTS\n";
    return 2;
  }
  if (dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    std::cerr << "cannot load " << argv[1] << ": " << dlerror() << "\n";
    return 1;
  }
  try {
    torch::jit::Module model = torch::jit::load(argv[2]);
    model.eval();
    std::ifstream in(argv[3], std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<torch::jit::IValue> inputs = torch::jit::pickle_load(bytes).toTupleRef().elements().vec();
    torch::NoGradGuard no_grad;
    torch::jit::IValue outputs = model.forward(inputs);
    std::vector<char> written = torch::jit::pickle_save(outputs);
    std::ofstream out(argv[4], std::ios::binary);
    out.write(written.data(), static_cast<std::streamsize>(written.size()));
  } catch (const std::exception& error) {
    std::cerr << error.what() << "\n";
    return 1;
  }
  return 0;
}
