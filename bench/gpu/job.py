# A consumer's GPU job for the process runtime (issue #10's proof on real hardware).
# It runs in the node's scratch directory: inputs/ holds nothing it needs, outputs/ is what
# comes back. Three nodes run it (verification "redundant"), so outputs/ holds only what
# every honest run on any NVIDIA GPU computes alike: an exact int8 product's digest. The
# timings and the device's name go to the logs, which are not part of the result.
import hashlib
import os
import sys
import time

import torch

if not torch.cuda.is_available():
    print("no CUDA device visible to this job", file=sys.stderr)
    sys.exit(3)

dev = torch.device("cuda")
print(f"device: {torch.cuda.get_device_name(0)} · torch {torch.__version__} · CUDA {torch.version.cuda}", flush=True)

n = 8192
g = torch.Generator(device="cpu").manual_seed(20261130)
a = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=g).to(dev)
b = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=g).to(dev)
bt = b.t().contiguous().t()  # column-major second operand: the fast int8 path
c = torch._int_mm(a, bt)  # exact: int32 accumulation
torch.cuda.synchronize()
reps = 10
t0 = time.perf_counter()
for _ in range(reps):
    c = torch._int_mm(a, bt)
torch.cuda.synchronize()
dt = (time.perf_counter() - t0) / reps
print(f"int8 {n}x{n}x{n}: {dt*1e3:.2f} ms per product, {2*n**3/dt/1e12:.0f} TOPS", flush=True)

digest = hashlib.sha256(c.cpu().numpy().tobytes()).hexdigest()
os.makedirs("outputs", exist_ok=True)
with open("outputs/product.txt", "w") as f:
    f.write(f"C = A·B, {n}x{n} int8 from seed 20261130, int32 result\nsha256 {digest}\n")
print(f"wrote outputs/product.txt (sha256 of C {digest[:16]}…)", flush=True)
