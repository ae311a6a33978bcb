// Matrix-vector products mod p = 2^61 - 1 for Freivalds' check of an int8 product
// (internal/verify), on an NVIDIA GPU. out[i] = sum_j M[i][j] * v[j] mod p, for a row-major
// rows x cols matrix M of int8 or int32 and v in [0, p)^cols.
//
// One warp per row: each lane walks the row 32 apart, keeping two exact 128-bit sums, one
// of |x|*v over the positive entries and one over the negative (|x| < 2^31, v < 2^61, at
// most 2^26 columns: below 2^118), so no reduction happens in the loop; the warp adds its
// lanes' sums and lane 0 reduces them mod p.
//
// freivalds.ptx is this file compiled by NVIDIA's compiler, for any GPU from compute
// capability 7.5 (the driver compiles PTX for the GPU it runs on):
//   nvcc -ptx -arch=compute_75 -o freivalds.ptx freivalds.cu
// Regenerate it after any change here; internal/cuda embeds it.

typedef unsigned long long u64;

#define P 0x1FFFFFFFFFFFFFFFULL

// reduce returns x mod p for any x, using 2^61 = 1 (mod p).
__device__ __forceinline__ u64 reduce(u64 x) {
  x = (x & P) + (x >> 61);
  return x >= P ? x - P : x;
}

// mod128 returns (hi * 2^64 + lo) mod p, using 2^64 = 2^3 (mod p).
__device__ __forceinline__ u64 mod128(u64 hi, u64 lo) {
  u64 s = reduce(reduce(hi) << 3) + reduce(lo);
  return s >= P ? s - P : s;
}

// add128 adds (h, l) to (hi, lo).
__device__ __forceinline__ void add128(u64 &hi, u64 &lo, u64 h, u64 l) {
  lo += l;
  hi += h + (lo < l);
}

template <typename T>
__device__ __forceinline__ void matvec(const T *__restrict__ m, const u64 *__restrict__ v,
                                       u64 *__restrict__ out, int rows, int cols) {
  const long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // the whole warp: row is the same for its 32 lanes
  const T *r = m + row * (long long)cols;
  u64 ph = 0, pl = 0, nh = 0, nl = 0;
  for (int j = lane; j < cols; j += 32) {
    const long long x = r[j];
    const u64 y = v[j];
    if (x >= 0) {
      add128(ph, pl, __umul64hi((u64)x, y), (u64)x * y);
    } else {
      add128(nh, nl, __umul64hi((u64)-x, y), (u64)-x * y);
    }
  }
  for (int off = 16; off > 0; off >>= 1) {
    add128(ph, pl, __shfl_down_sync(0xffffffffu, ph, off), __shfl_down_sync(0xffffffffu, pl, off));
    add128(nh, nl, __shfl_down_sync(0xffffffffu, nh, off), __shfl_down_sync(0xffffffffu, nl, off));
  }
  if (lane == 0) {
    const u64 p = mod128(ph, pl), n = mod128(nh, nl);
    out[row] = p >= n ? p - n : p + P - n;
  }
}

extern "C" __global__ void omni_matvec_i8(const signed char *m, const u64 *v, u64 *out, int rows, int cols) {
  matvec(m, v, out, rows, cols);
}

extern "C" __global__ void omni_matvec_i32(const int *m, const u64 *v, u64 *out, int rows, int cols) {
  matvec(m, v, out, rows, cols);
}
