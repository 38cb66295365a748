#!/usr/bin/env python3
"""torch_step.py - moebench's trainable model (model/train/net.h) in plain eager PyTorch
on the CPU: the checkpoint check and the speed baseline of issue 13.

    moebench step --batch 2 --seq 64 --save a.safetensors --dump-batch a.json
    torch_step.py check a.json a.safetensors                  # same loss?
    torch_step.py check a.json a.safetensors --train-steps 3 --save-back b.safetensors
    moebench step --batch 2 --seq 64 --init-from b.safetensors --dump-batch b.json
    torch_step.py check b.json b.safetensors                  # the round trip
    torch_step.py bench d.json --threads 2 --warmup 1 --iters 5   # tokens/s

The config, the batch's token ids and moebench's losses come from `moebench step
--dump-batch` (benchmarks/train/step_io.c); the weights from a moebench safetensors file
(`step --save`, `train --save`), read by name and shape with the safetensors package.
`check` recomputes the loss of that batch in FP32 and FP64 and compares it with
moebench's (FP32 step and its FP64 reference), and the expert selection through
moebench's route hash; `--train-steps N --save-back FILE` then takes N AdamW steps here
and writes the weights back under the same names for `moebench step --init-from`.
`bench` times forward + backward + clipping + AdamW (+ the routing-bias update) on the
dump's batch, warm-up then the median of --iters, and prints tokens/s.

The model, as moebench computes it (written here from model/train/net*.h and
kernels/attention/mla*.h, not from another implementation): RMSNorm x / sqrt(mean x^2 +
eps) * g; MLA with q LoRA + RMSNorm, kv LoRA + RMSNorm on the latent part, RoPE on the
rope part of q and on the shared key (interleaved pairs (2i, 2i+1) rotated by
pos * theta^(-2i/dr), DeepSeek's convention), causal softmax at 1/sqrt(dn + dr); GQA
(llama3-tiny) with RoPE on the whole head; SwiGLU; MoE with sigmoid scores, the
correction bias for the selection only, group-limited top-k (a group's score is the sum
of its two best biased scores), weights s / sum(selected s) * route_scale, shared
experts on every token; MTP depth k: eh_proj [enorm(emb(t+k)) | hnorm(h)], one block,
shared_head.norm, the shared head; loss = main + lambda * mean_k L_k + alpha * the
complementary sequence-wise balance loss (DeepSeek-V3 eq. 17-20), summed over MoE blocks.
Exit status: 0 agreement, 1 a loss over the tolerance, 2 bad input.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

try:
    from safetensors.torch import load_file, save_file
except ImportError:  # pragma: no cover - the venv of REPRODUCE.md has it
    print("torch_step.py: error: the safetensors package is missing (pip install safetensors)",
          file=sys.stderr)
    sys.exit(2)

def die(msg):
    """One error line and exit 2 (bad input), as moebench does."""
    print(f"torch_step.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


FNV_OFFSET, FNV_PRIME, MASK64 = 1469598103934665603, 1099511628211, (1 << 64) - 1


# ---- layout: every tensor's Hugging Face name, [out, in] shape, decay, trainable ----

def block_tensors(c, i):
    """The tensors of block i (a main layer, or the MTP module of depth i - layers + 1)."""
    d, H, L = c["dim"], c["heads"], c["layers"]
    p = f"model.layers.{i}."
    mtp = i >= L
    out = []
    mat = lambda n, r, k: out.append((p + n, (r, k), True, True))
    vec = lambda n, r: out.append((p + n, (r,), False, True))
    if mtp:
        vec("enorm.weight", d)
        vec("hnorm.weight", d)
        mat("eh_proj.weight", d, 2 * d)
    vec("input_layernorm.weight", d)
    if c["attention"] == "mla":
        dqk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
        if c["q_lora_rank"] > 0:
            mat("self_attn.q_a_proj.weight", c["q_lora_rank"], d)
            vec("self_attn.q_a_layernorm.weight", c["q_lora_rank"])
            mat("self_attn.q_b_proj.weight", H * dqk, c["q_lora_rank"])
        else:
            mat("self_attn.q_proj.weight", H * dqk, d)
        mat("self_attn.kv_a_proj_with_mqa.weight", c["kv_lora_rank"] + c["qk_rope_head_dim"], d)
        vec("self_attn.kv_a_layernorm.weight", c["kv_lora_rank"])
        mat("self_attn.kv_b_proj.weight", H * (c["qk_nope_head_dim"] + c["v_head_dim"]),
            c["kv_lora_rank"])
        mat("self_attn.o_proj.weight", d, H * c["v_head_dim"])
    else:
        hd, G = c["head_dim"], c["kv_heads"]
        mat("self_attn.q_proj.weight", H * hd, d)
        mat("self_attn.k_proj.weight", G * hd, d)
        mat("self_attn.v_proj.weight", G * hd, d)
        mat("self_attn.o_proj.weight", d, H * hd)
    vec("post_attention_layernorm.weight", d)
    if is_moe(c, i):
        E, im = c["routed_experts"], c["moe_inter_dim"]
        out.append((p + "mlp.gate.weight", (E, d), False, True))
        out.append((p + "mlp.gate.e_score_correction_bias", (E,), False, False))
        if c["shared_experts"] > 0:
            w = im * c["shared_experts"]
            mat("mlp.shared_experts.gate_proj.weight", w, d)
            mat("mlp.shared_experts.up_proj.weight", w, d)
            mat("mlp.shared_experts.down_proj.weight", d, w)
        for e in range(E):
            mat(f"mlp.experts.{e}.gate_proj.weight", im, d)
            mat(f"mlp.experts.{e}.up_proj.weight", im, d)
            mat(f"mlp.experts.{e}.down_proj.weight", d, im)
    else:
        mat("mlp.gate_proj.weight", c["inter_dim"], d)
        mat("mlp.up_proj.weight", c["inter_dim"], d)
        mat("mlp.down_proj.weight", d, c["inter_dim"])
    if mtp:
        vec("shared_head.norm.weight", d)
    return out


def is_moe(c, i):
    """An MTP block is shaped like the last main layer (net_layout.c)."""
    shape = c["layers"] - 1 if i >= c["layers"] else i
    return c["routed_experts"] > 0 and shape >= c["dense_layers"]


def layout(c):
    """[(name, shape, decay, trainable)] of the whole model, in moebench's order."""
    t = [("model.embed_tokens.weight", (c["vocab"], c["dim"]), True, True)]
    for i in range(c["layers"] + c["mtp_depth"]):
        t += block_tensors(c, i)
    t.append(("model.norm.weight", (c["dim"],), False, True))
    if not c["tied_embeddings"]:
        t.append(("lm_head.weight", (c["vocab"], c["dim"]), True, True))
    return t


def load_weights(c, path, dtype):
    """The checkpoint's tensors by name, refusing a missing, extra or misshapen one."""
    got = load_file(path)
    want = {n: s for n, s, _, _ in layout(c)}
    extra = sorted(set(got) - set(want))
    missing = sorted(set(want) - set(got))
    if extra or missing:
        die(f"{path}: tensors not in this model {extra[:3]}, "
                 f"missing {missing[:3]}")
    for n, s in want.items():
        if tuple(got[n].shape) != s:
            die(f"{path}: {n} is {tuple(got[n].shape)}, want {s}")
    return {n: got[n].to(dtype).contiguous() for n in want}


def init_weights(c, std, seed, dtype):
    """Matrices N(0, std), norms 1, the routing bias 0 (net_init's rule, not its draws)."""
    g = torch.Generator().manual_seed(seed)
    w = {}
    for n, s, decay, trainable in layout(c):
        if len(s) == 2:
            w[n] = torch.randn(s, generator=g, dtype=torch.float64).mul_(std).to(dtype)
        else:
            w[n] = torch.ones(s, dtype=dtype) if trainable else torch.zeros(s, dtype=dtype)
    return w


# ---- the model ----

class Net:
    """moebench's model over a dict of named weights; forward() returns the loss terms."""

    def __init__(self, cfg, opts, w):
        self.c, self.w = cfg, w
        self.eps, self.theta = opts["norm_eps"], opts["rope_theta"]
        self.lam, self.alpha = opts["mtp_weight"], opts["balance_alpha"]
        self.rope_cache = {}
        self.selections = []
        self.loads = {}

    def rms(self, x, name):
        g = self.w[name]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * g

    def lin(self, x, name):
        return x @ self.w[name].t()

    def rope_tables(self, S, dr, dtype):
        key = (S, dr, dtype)
        if key not in self.rope_cache:
            i = torch.arange(dr // 2, dtype=torch.float64)
            ang = torch.arange(S, dtype=torch.float64)[:, None] * self.theta ** (-2.0 * i / dr)
            self.rope_cache[key] = (ang.cos().to(dtype), ang.sin().to(dtype))
        return self.rope_cache[key]

    @staticmethod
    def rope(x, cos, sin):
        """Rotate interleaved pairs (x[2i], x[2i+1]) of the last dim; cos, sin [S, dr/2]
        broadcast against x [B, S, ..., dr]."""
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)

    def attn_core(self, q, k, v, scale):
        """q, k [B, S, H, dqk], v [B, S, H, dv] -> [B, S, H * dv], causal."""
        B, S, H, _ = q.shape
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), is_causal=True, scale=scale)
        return o.transpose(1, 2).reshape(B, S, -1)

    def mla(self, x, p):
        c = self.c
        B, S, _ = x.shape
        H, dn, dr, dv = c["heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        kvl = c["kv_lora_rank"]
        if c["q_lora_rank"] > 0:
            q = self.lin(self.rms(self.lin(x, p + "q_a_proj.weight"), p + "q_a_layernorm.weight"),
                         p + "q_b_proj.weight")
        else:
            q = self.lin(x, p + "q_proj.weight")
        q = q.view(B, S, H, dn + dr)
        kva = self.lin(x, p + "kv_a_proj_with_mqa.weight")
        lat = self.rms(kva[..., :kvl], p + "kv_a_layernorm.weight")
        kv = self.lin(lat, p + "kv_b_proj.weight").view(B, S, H, dn + dv)
        cos, sin = self.rope_tables(S, dr, x.dtype)
        kr = self.rope(kva[..., kvl:], cos, sin)
        qr = self.rope(q[..., dn:], cos[:, None, :], sin[:, None, :])
        q = torch.cat((q[..., :dn], qr), -1)
        k = torch.cat((kv[..., :dn], kr[:, :, None, :].expand(B, S, H, dr)), -1)
        o = self.attn_core(q, k, kv[..., dn:], 1.0 / math.sqrt(dn + dr))
        return self.lin(o, p + "o_proj.weight")

    def gqa(self, x, p):
        c = self.c
        B, S, _ = x.shape
        H, G, hd = c["heads"], c["kv_heads"], c["head_dim"]
        cos, sin = self.rope_tables(S, hd, x.dtype)
        cos, sin = cos[:, None, :], sin[:, None, :]
        q = self.rope(self.lin(x, p + "q_proj.weight").view(B, S, H, hd), cos, sin)
        k = self.rope(self.lin(x, p + "k_proj.weight").view(B, S, G, hd), cos, sin)
        v = self.lin(x, p + "v_proj.weight").view(B, S, G, hd)
        k, v = k.repeat_interleave(H // G, 2), v.repeat_interleave(H // G, 2)
        return self.lin(self.attn_core(q, k, v, 1.0 / math.sqrt(hd)), p + "o_proj.weight")

    def swiglu(self, x, p):
        return self.lin(F.silu(self.lin(x, p + "gate_proj.weight")) *
                        self.lin(x, p + "up_proj.weight"), p + "down_proj.weight")

    def select(self, s, bias):
        """Group-limited top-k of the biased scores (route.c's rule), best first."""
        c = self.c
        T, E = s.shape
        b = s + bias if c["expert_bias"] else s.clone()
        G, kg = c["n_groups"], c["topk_groups"]
        if G > 1 and kg < G:
            grp = b.view(T, G, E // G)
            score = grp.topk(min(2, E // G), -1).values.sum(-1)
            keep = torch.zeros(T, G, dtype=torch.bool).scatter_(1, score.topk(kg, -1).indices, True)
            b = b.masked_fill(~keep[:, :, None].expand(T, G, E // G).reshape(T, E), -math.inf)
        return b.topk(c["activated_experts"], -1).indices

    def moe(self, x, p, B, S):
        """x [T, d] -> shared(x) + sum_k w_k expert_k(x); returns (y, balance loss)."""
        c = self.c
        T, d = x.shape
        E, K = c["routed_experts"], c["activated_experts"]
        s = torch.sigmoid(self.lin(x, p + "gate.weight"))
        with torch.no_grad():
            idx = self.select(s.float(), self.w[p + "gate.e_score_correction_bias"].float())
        self.selections.append(idx)
        sel = s.gather(1, idx)
        wts = sel / sel.sum(-1, keepdim=True) * c["route_scale"]
        flat = idx.reshape(-1)
        order = flat.argsort(stable=True)
        counts = torch.bincount(flat, minlength=E)
        self.loads[p] = counts
        rows = order // K
        xs = x.index_select(0, rows)
        ys, start = [], 0
        for e, n in enumerate(counts.tolist()):
            if n:
                ys.append(self.swiglu(xs[start:start + n], p + f"experts.{e}."))
            start += n
        ys = torch.cat(ys) * wts.reshape(-1)[order, None]
        y = torch.zeros_like(x).index_add_(0, rows, ys)
        if c["shared_experts"] > 0:
            y = y + self.swiglu(x, p + "shared_experts.")
        with torch.no_grad():
            f = torch.zeros(B, E, dtype=x.dtype).scatter_add_(
                1, idx.view(B, S * K), torch.ones(B, S * K, dtype=x.dtype)) * (E / (K * S))
        P = (s / s.sum(-1, keepdim=True)).view(B, S, E).mean(1)
        return y, self.alpha * (f * P).sum(-1).mean()

    def block(self, i, x):
        """Block i on x [B, S, d]: attention and FFN with their residuals; + balance loss."""
        p = f"model.layers.{i}."
        B, S, d = x.shape
        n1 = self.rms(x, p + "input_layernorm.weight")
        h = x + (self.mla(n1, p + "self_attn.") if self.c["attention"] == "mla"
                 else self.gqa(n1, p + "self_attn."))
        n2 = self.rms(h, p + "post_attention_layernorm.weight")
        if not is_moe(self.c, i):
            return h + self.swiglu(n2, p + "mlp."), 0.0
        y, bal = self.moe(n2.reshape(B * S, d), p + "mlp.", B, S)
        return h + y.view(B, S, d), bal

    def ce(self, x, norm, targets):
        head = self.w["model.embed_tokens.weight" if self.c["tied_embeddings"] else "lm_head.weight"]
        logits = self.rms(x, norm) @ head.t()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def forward(self, tok, S):
        """tok [B, S + 1 + D] (int64) -> dict of loss terms (tensors)."""
        c = self.c
        L, D = c["layers"], c["mtp_depth"]
        emb = self.w["model.embed_tokens.weight"]
        self.selections = []
        h, bal = emb[tok[:, :S]], 0.0
        for i in range(L):
            h, b = self.block(i, h)
            bal = bal + b
        main = self.ce(h, "model.norm.weight", tok[:, 1:S + 1])
        mtp = 0.0
        for k in range(1, D + 1):
            p = f"model.layers.{L + k - 1}."
            x = torch.cat((self.rms(emb[tok[:, k:k + S]], p + "enorm.weight"),
                           self.rms(h, p + "hnorm.weight")), -1)
            h, b = self.block(L + k - 1, self.lin(x, p + "eh_proj.weight"))
            bal = bal + b
            mtp = mtp + self.ce(h, p + "shared_head.norm.weight", tok[:, k + 1:k + 1 + S]) / D
        total = main + self.lam * mtp + bal
        return {"loss": total, "main_loss": main, "mtp_loss": mtp, "balance_loss": bal}

    def route_hash(self):
        """moebench's FNV-1a over every MoE block's selected experts, best first."""
        h = FNV_OFFSET
        for idx in self.selections:
            for e in idx.reshape(-1).tolist():
                h = ((h ^ e) * FNV_PRIME) & MASK64
        return h


# ---- training ----

def optimizer(c, w):
    """AdamW as net_optim.c: betas 0.9/0.95, eps 1e-8, decay 0.1 on matrices only; the
    routing bias is not a parameter (the balancing rule moves it)."""
    decay, plain = [], []
    for n, s, dec, trainable in layout(c):
        if trainable:
            w[n].requires_grad_(True)
            (decay if dec else plain).append(w[n])
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": plain, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=3e-3, betas=(0.9, 0.95), eps=1e-8, fused=True), "fused"
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=3e-3, betas=(0.9, 0.95), eps=1e-8), "for-loop"


def train_step(net, opt, params, tok, S, gamma=0.001):
    """Forward, backward, clip to norm 1, AdamW, then the bias rule (load vs mean)."""
    opt.zero_grad(set_to_none=True)
    out = net.forward(tok, S)
    out["loss"].backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    if net.c["expert_bias"]:
        with torch.no_grad():
            for p, load in net.loads.items():
                lf = load.to(torch.float64)
                net.w[p + "gate.e_score_correction_bias"] += gamma * torch.sign(lf.mean() - lf).float()
    return out


# ---- commands ----

def read_dump(path):
    with open(path) as f:
        d = json.load(f)
    if d.get("precision") != "fp32":
        die(f"{path}: precision {d.get('precision')}, only fp32 compares")
    return d


def losses(cfg, dump, w, tok):
    net = Net(cfg, dump, w)
    with torch.no_grad():
        out = net.forward(tok, dump["seq"])
    return {k: float(v) for k, v in out.items()}, net.route_hash()


def cmd_check(a):
    dump = read_dump(a.dump)
    cfg = dump["config"]
    tok = torch.tensor(dump["tokens"], dtype=torch.int64)
    torch.set_num_threads(a.threads)
    w32 = load_weights(cfg, a.ckpt, torch.float32)
    l32, h32 = losses(cfg, dump, w32, tok)
    w64 = {n: t.double() for n, t in w32.items()}
    l64, h64 = losses(cfg, dump, w64, tok)
    want = int(dump["route_hash"])
    print(f"{'term':<14}{'moebench_fp32':>18}{'torch_fp32':>18}{'rel_err':>11}")
    for k in ("main_loss", "mtp_loss", "balance_loss", "loss"):
        err = abs(l32[k] - dump[k]) / abs(dump[k]) if dump[k] else abs(l32[k])
        print(f"{k:<14}{dump[k]:>18.10g}{l32[k]:>18.10g}{err:>11.2e}")
    e32 = abs(l32["loss"] - dump["loss"]) / dump["loss"]
    e64 = abs(l64["loss"] - dump["loss_fp64"]) / dump["loss_fp64"]
    print(f"loss fp64: moebench {dump['loss_fp64']:.15g} torch {l64['loss']:.15g} "
          f"rel_err {e64:.2e}")
    print(f"expert selection: fp32 {'same' if h32 == want else 'DIFFERS'} as moebench's, "
          f"fp64 {'same' if h64 == want else 'differs'} (route hash)")
    ok = e32 <= a.tol and (h32 == want or a.allow_ties)
    print(f"check: {'pass' if ok else 'FAIL'} (fp32 rel_err {e32:.2e}, tolerance {a.tol:g})")
    if a.save_back:
        save_back(cfg, dump, w32, tok, a)
    return 0 if ok else 1


def save_back(cfg, dump, w, tok, a):
    """--train-steps N AdamW steps here, then the weights under moebench's names."""
    net = Net(cfg, dump, w)
    opt, _ = optimizer(cfg, w)
    params = [t for n, t in w.items() if t.requires_grad]
    for i in range(a.train_steps):
        out = train_step(net, opt, params, tok, dump["seq"])
        print(f"torch step {i + 1}: loss {out['loss'].item():.6f}")
    save_file({n: t.detach().contiguous() for n, t in w.items()}, a.save_back)
    l32, _ = losses(cfg, dump, {n: t.detach() for n, t in w.items()}, tok)
    print(f"saved {a.save_back}: torch fp32 loss of the batch with these weights {l32['loss']:.10g}")


def cmd_bench(a):
    dump = read_dump(a.dump)
    cfg = dump["config"]
    torch.set_num_threads(a.threads)
    tok = torch.tensor(dump["tokens"], dtype=torch.int64)
    B, S = dump["batch"], dump["seq"]
    w = load_weights(cfg, a.ckpt, torch.float32) if a.ckpt else init_weights(cfg, 0.006, 1, torch.float32)
    net = Net(cfg, dump, w)
    opt, kind = optimizer(cfg, w)
    params = [t for t in w.values() if t.requires_grad]
    times = []
    for i in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        train_step(net, opt, params, tok, S)
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    if a.peak:
        x, y = torch.randn(2048, 2048), torch.randn(2048, 2048)
        mm = []
        for _ in range(6):
            t0 = time.perf_counter()
            torch.mm(x, y)
            mm.append(time.perf_counter() - t0)
        print(f"torch.mm 2048^3 FP32: {2 * 2048 ** 3 / statistics.median(mm[1:]) / 1e9:.1f} GFLOP/s "
              f"(median of 5)")
    print(f"torch {torch.__version__} eager, {torch.get_num_threads()} threads, AdamW {kind}: "
          f"{cfg['name']} b{B} s{S}: {B * S / med:.0f} tok/s, step median {1e3 * med:.1f} ms "
          f"(min {1e3 * min(times):.1f}, max {1e3 * max(times):.1f}, {a.iters} steps)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"tokens_per_s": B * S / med, "time_s": times, "threads": a.threads,
                       "torch": torch.__version__, "adamw": kind}, f)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="recompute a moebench step's loss from its weights and batch")
    c.add_argument("dump", help="a `moebench step --dump-batch` file")
    c.add_argument("ckpt", help="the weights (safetensors, moebench's names)")
    c.add_argument("--tol", type=float, default=1e-5, help="relative loss tolerance (FP32)")
    c.add_argument("--allow-ties", action="store_true", help="pass even if the selection differs")
    c.add_argument("--train-steps", type=int, default=0, help="AdamW steps here before --save-back")
    c.add_argument("--save-back", help="write the weights to this safetensors file")
    b = sub.add_parser("bench", help="time training steps on the dump's batch")
    b.add_argument("dump")
    b.add_argument("--ckpt", help="start from these weights (default: N(0, 0.006))")
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--iters", type=int, default=5)
    b.add_argument("--json", help="also write the times here")
    b.add_argument("--peak", action="store_true", help="also time torch.mm at 2048^3 (its SGEMM)")
    for p in (c, b):
        p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    a = ap.parse_args()
    return cmd_check(a) if a.cmd == "check" else cmd_bench(a)


if __name__ == "__main__":
    sys.exit(main())
