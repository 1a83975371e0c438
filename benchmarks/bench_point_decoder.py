"""The point decoder's cross-attention, factorised (`point_decoder.factorised_cross_attention`: the queries carried
into feature space, no key projected) against the textbook form (every key projected, nn.MultiheadAttention with
a boolean mask), forward + backward at the default profile's shapes, for each attention mask. Prints seconds per
call (median of the timed repeats) and the ratio; also checks that both give the same output.

    python benchmarks/bench_point_decoder.py [--batch 16] [--repeats 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from talking_points.pipeline.models.point_decoder import PointDecoderConfig, PointQueryDecoder
from talking_points.pipeline.models.positional import grid_centres, sinusoid_2d


def projected_keys(dec: PointQueryDecoder, maps, points, allowed):
    """The decoder computed the textbook way: keys = in_proj(features) + positions, masked attention over all
    keys (`allowed`: `dec.allowed_keys`, None for no mask). tests/test_vision_pretraining.py checks the decoder
    against it."""
    b, q_n, d = points.shape[0], dec.cfg.queries, dec.cfg.dim
    keys = torch.cat([p(m.flatten(2).transpose(1, 2)) for m, p in zip(maps, dec.in_proj)], 1)
    pos = torch.cat([(sinusoid_2d(grid_centres(*m.shape[-2:]), d) + dec.scale_embed[s]).expand(b, -1, -1)
                     for s, m in enumerate(maps)], 1)
    block = None
    if allowed is not None:
        block = (~allowed)[:, None].expand(-1, dec.cfg.heads, -1, -1).reshape(b * dec.cfg.heads, q_n, -1)
    region = dec.pos_proj(sinusoid_2d(points, d)).unsqueeze(1)
    q = dec.content.unsqueeze(0).expand(b, -1, -1)
    q_pos = region.expand(-1, q_n, -1)
    for layer in dec.layers:
        h = layer.norm_q(q)
        q = q + layer.cross(h + q_pos, keys + pos, keys, attn_mask=block, need_weights=False)[0]
        h = layer.norm_s(q)
        q = q + layer.self_attn(h + q_pos, h + q_pos, h, need_weights=False)[0]
        q = q + layer.ffn(layer.norm_f(q))
    return dec.norm(q)


def textbook(dec: PointQueryDecoder, maps, points, category_logits):
    """`projected_keys` with the decoder's own key mask (computed inside, as the decoder's forward does)."""
    return projected_keys(dec, maps, points, dec.allowed_keys(maps, points, category_logits))


def seconds(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    # the default profile: 144 x 192 images, maps at strides 4, 8, 24 of a 64-channel pixel decoder; decoder dim
    # 128, 3 layers, 4 heads, Gaussian sigma 0.025
    maps = [torch.randn(a.batch, 64, 36, 48), torch.randn(a.batch, 64, 18, 24), torch.randn(a.batch, 64, 6, 8)]
    logits = torch.randn(a.batch, 15, 36, 48)
    points = torch.rand(a.batch, 2) * 0.8 + 0.1
    print(f"threads {torch.get_num_threads()}, batch {a.batch}, keys {sum(m.shape[-2] * m.shape[-1] for m in maps)}")
    for mask in ("gaussian", "object", "none"):
        dec = PointQueryDecoder([64, 64, 64], PointDecoderConfig(dim=128, layers=3, heads=4, sigma=0.025,
                                                                 attention_mask=mask))
        with torch.no_grad():
            same = torch.allclose(dec(maps, points, logits)[0], textbook(dec, maps, points, logits), atol=1e-4)

        def step(fn):
            return lambda: fn().square().sum().backward()

        fast = seconds(step(lambda: dec(maps, points, logits)[0]), a.repeats)
        slow = seconds(step(lambda: textbook(dec, maps, points, logits)), a.repeats)
        print(f"  {mask:9s} factorised {fast * 1e3:7.1f} ms   projected keys {slow * 1e3:7.1f} ms   "
              f"{slow / fast:5.1f}x   same output: {same}")


if __name__ == "__main__":
    main()
