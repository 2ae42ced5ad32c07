// Peak rates of the instruction mixes behind Add2d and Conv on one core of the running CPU, for bench_ops.py's
// floor column: Conv's multiply-accumulate is one fused multiply-add per lane; an adder term |x - w| accumulated is
// either a subtraction, a sign mask and an addition (the exact loop) or, through |x - w| = x + w - 2 min(x, w), a
// min and an accumulation (the kernel's loop, which puts the accumulation on the multiply-add units as a * 1 + acc).
// Each mix runs in a loop of independent accumulators (enough to hide the latencies), written in assembly so the
// compiler can neither fold nor reorder it. Prints one line per instruction set and mix: `isa mix G-lanes/s`.
//
// Build: c++ -O2 -o floor floor.cc (x86-64 only).
#include <cstdio>
#include <ctime>

namespace {

double Now() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Ten ymm accumulators (ymm0-9), two temporaries (ymm10-11), x, w and 1.0 or the sign mask in ymm13-15; twelve zmm
// accumulators (zmm0-11), temporaries zmm12-13, x, w and 1.0 or the mask in zmm14-16. The temporaries alternate
// between consecutive accumulators.
#define Y10(op) op(0, "10") op(1, "11") op(2, "10") op(3, "11") op(4, "10") op(5, "11") op(6, "10") op(7, "11") \
  op(8, "10") op(9, "11")
#define Z12(op) op(0, "12") op(1, "13") op(2, "12") op(3, "13") op(4, "12") op(5, "13") op(6, "12") op(7, "13") \
  op(8, "12") op(9, "13") op(10, "12") op(11, "13")

#define ZERO_Y(k, t) "vxorps %%ymm" #k ", %%ymm" #k ", %%ymm" #k "\n"
#define FMA_Y(k, t) "vfmadd231ps %%ymm14, %%ymm13, %%ymm" #k "\n"
#define MIN_Y(k, t) "vminps %%ymm14, %%ymm13, %%ymm" t "\n vfmadd231ps %%ymm15, %%ymm" t ", %%ymm" #k "\n"
#define SUB_Y(k, t) \
  "vsubps %%ymm14, %%ymm13, %%ymm" t "\n vandps %%ymm15, %%ymm" t ", %%ymm" t "\n vaddps %%ymm" t ", %%ymm" #k ", %%ymm" #k "\n"
#define ZERO_Z(k, t) "vpxord %%zmm" #k ", %%zmm" #k ", %%zmm" #k "\n"
#define FMA_Z(k, t) "vfmadd231ps %%zmm15, %%zmm14, %%zmm" #k "\n"
#define MIN_Z(k, t) "vminps %%zmm15, %%zmm14, %%zmm" t "\n vfmadd231ps %%zmm16, %%zmm" t ", %%zmm" #k "\n"
#define SUB_Z(k, t) \
  "vsubps %%zmm15, %%zmm14, %%zmm" t "\n vpandd %%zmm16, %%zmm" t ", %%zmm" t "\n vaddps %%zmm" t ", %%zmm" #k ", %%zmm" #k "\n"

const float kOnes[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
const unsigned kMask[16] = {0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu,
                            0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu,
                            0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu};
const float kX[16] = {0.5f, 0.25f, 0.5f, 0.25f, 0.5f, 0.25f, 0.5f, 0.25f, 0.5f, 0.25f, 0.5f, 0.25f, 0.5f, 0.25f,
                      0.5f, 0.25f};
const float kW[16] = {0.75f, 0.125f, 0.75f, 0.125f, 0.75f, 0.125f, 0.75f, 0.125f, 0.75f, 0.125f, 0.75f, 0.125f,
                      0.75f, 0.125f, 0.75f, 0.125f};

// A timed loop: the accumulators zeroed, x, w and `third` (1.0 or the sign mask) loaded, then the mix `op` on every
// accumulator, n times. Returns the terms per iteration: accumulators x lanes.
#define YMM_LOOP(name, op, third)                                                                                  \
  long name(long n) {                                                                                             \
    asm volatile(Y10(ZERO_Y) "vmovups %1, %%ymm13\n vmovups %2, %%ymm14\n vmovups %3, %%ymm15\n"                  \
                 "1:\n" Y10(op) "dec %0\n jnz 1b\n vzeroupper\n"                                                   \
                 : "+r"(n)                                                                                        \
                 : "m"(kX), "m"(kW), "m"(third)                                                                   \
                 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
                   "xmm13", "xmm14", "xmm15", "cc");                                                              \
    return 10 * 8;                                                                                                \
  }
#define ZMM_LOOP(name, op, third)                                                                                  \
  __attribute__((target("avx512f"))) long name(long n) {                                                          \
    asm volatile(Z12(ZERO_Z) "vmovups %1, %%zmm14\n vmovups %2, %%zmm15\n vmovups %3, %%zmm16\n"                  \
                 "1:\n" Z12(op) "dec %0\n jnz 1b\n vzeroupper\n"                                                   \
                 : "+r"(n)                                                                                        \
                 : "m"(kX), "m"(kW), "m"(third)                                                                   \
                 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
                   "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "cc");                                            \
    return 12 * 16;                                                                                               \
  }

YMM_LOOP(Fma256, FMA_Y, kOnes)
YMM_LOOP(Min256, MIN_Y, kOnes)
YMM_LOOP(Sub256, SUB_Y, kMask)
ZMM_LOOP(Fma512, FMA_Z, kOnes)
ZMM_LOOP(Min512, MIN_Z, kOnes)
ZMM_LOOP(Sub512, SUB_Z, kMask)

// Best of five timed runs of ~20 ms each, in G terms per second.
double Rate(long (*loop)(long)) {
  const long iterations = 2000000;
  loop(iterations / 10);  // warm up (clocks, AVX-512 power state)
  double best = 0.0;
  for (int r = 0; r < 5; ++r) {
    const double start = Now();
    const long lanes = loop(iterations);
    const double seconds = Now() - start;
    const double rate = static_cast<double>(lanes) * static_cast<double>(iterations) / seconds * 1e-9;
    if (rate > best) best = rate;
  }
  return best;
}

}  // namespace

int main() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::puts("no AVX2 with FMA: no floor figures");
    return 0;
  }
  std::printf("avx2 fma %.2f\navx2 min+fma %.2f\navx2 sub+and+add %.2f\n", Rate(&Fma256), Rate(&Min256),
              Rate(&Sub256));
  if (__builtin_cpu_supports("avx512f")) {
    std::printf("avx512 fma %.2f\navx512 min+fma %.2f\navx512 sub+and+add %.2f\n", Rate(&Fma512), Rate(&Min512),
                Rate(&Sub512));
  }
  return 0;
}
