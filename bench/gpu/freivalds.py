# What a Freivalds check of an int8 product costs on this GPU against the product itself
# (issue #13, "validators that have GPUs check on them"). For n in 4096, 8192, 16384: the
# product C = A·B (torch._int_mm, second operand column-major), then the check
# A·(B·r) == C·r for a random vector r with entries in [1, 256), in float64, which is exact
# at these sizes (|A·(B·r)| <= 127·127·n·n·255 < 2^53). Prints one line per n; timings are the mean of reps
# after a warm-up.
import sys
import time

import torch

dev = torch.device("cuda")


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        out = fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps, out


print(f"device: {torch.cuda.get_device_name(0)}", flush=True)
for n in [int(x) for x in (sys.argv[1:] or ["4096", "8192", "16384"])]:
    a = torch.randint(-128, 128, (n, n), dtype=torch.int8, device=dev)
    b = torch.randint(-128, 128, (n, n), dtype=torch.int8, device=dev).t().contiguous().t()
    t_mm, c = timed(lambda: torch._int_mm(a, b), 10)
    r = torch.randint(1, 256, (n,), dtype=torch.float64, device=dev)

    def check():
        # One row block at a time, so no n×n float64 copy of A or C is ever held.
        br = torch.empty(n, dtype=torch.float64, device=dev)
        blk = 2048
        for i in range(0, n, blk):
            br[i:i + blk] = b[i:i + blk].to(torch.float64) @ r
        ok = True
        for i in range(0, n, blk):
            left = a[i:i + blk].to(torch.float64) @ br
            right = c[i:i + blk].to(torch.float64) @ r
            ok &= bool(torch.equal(left, right))
        return ok

    t_chk, ok = timed(check, 5)
    c[n // 3, n // 5] += 1  # one wrong element
    bad = check()
    print(f"n={n}: product {t_mm*1e3:.2f} ms ({2*n**3/t_mm/1e12:.0f} TOPS), check {t_chk*1e3:.2f} ms "
          f"= {100*t_chk/t_mm:.1f}% of the product; honest passes: {ok}; one wrong element caught: {not bad}",
          flush=True)
    del a, b, c
    torch.cuda.empty_cache()
