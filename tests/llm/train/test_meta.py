"""Reptile: the meta-update moves the init toward the task-adapted weights; task families;
second-order MAML's meta-gradient against a finite difference; the CLI end to end."""

import json

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from typer.testing import CliRunner  # noqa: E402

from mgpt.llm.train.config import load_config  # noqa: E402
from mgpt.llm.train.errors import TrainError  # noqa: E402
from mgpt.llm.train.meta import (  # noqa: E402
    VOCAB, Family, adapt, build_meta_model, families, maml_inner, reptile_step, sample_batch, task_loss,
)


def _cfg(**over):
    base = {"max_iters": 2, "batch_size": 8, "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16,
            "meta.seq_len": 4, "meta.inner_steps": 3, "meta.tasks_per_batch": 2, "meta.inner_lr": 0.01,
            "meta.train_families": 4, "meta.eval_families": 2, "meta.eval_steps": [0, 2], "threads": 1}
    base.update(over)
    return load_config("meta_tiny", base)


def test_families_are_disjoint_and_apply_their_op_and_key():
    train, held = families(0, 10, 5)
    assert len(train) == 10 and len(held) == 5 and not set(train) & set(held)
    assert Family("reverse", 3).apply([0, 1, 15]) == [(15 + 3) % VOCAB, 4, 3]
    assert Family("rotate", 0).apply([1, 2, 3]) == [2, 3, 1]
    with pytest.raises(TrainError):
        families(0, 40, 20)


def test_batches_label_only_the_answer():
    ids, labels = sample_batch(Family("copy", 1), 3, 4, torch.Generator().manual_seed(0))
    assert ids.shape == labels.shape == (3, 9)
    assert (labels[:, :5] == -100).all()
    assert torch.equal(labels[:, 5:], (ids[:, :4] + 1) % VOCAB)


def test_a_reptile_step_moves_the_weights_toward_the_task_adapted_weights():
    cfg = _cfg(**{"meta.outer_lr": 0.5, "meta.tasks_per_batch": 1})
    model = build_meta_model(cfg, seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    phi = [p.detach().clone() for p in params]
    task = Family("copy", 5)
    # The weights one task's adaptation reaches from phi, with the same batches.
    adapt(model, task, cfg.meta.inner_steps, cfg, torch.Generator().manual_seed(7))
    adapted = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, p0 in zip(params, phi):
            p.copy_(p0)
    norm = reptile_step(model, [task], cfg, torch.Generator().manual_seed(7))
    after = [p.detach() for p in params]
    # phi + 0.5 * (W - phi): exactly halfway to the adapted weights.
    for p0, w, p1 in zip(phi, adapted, after):
        assert torch.allclose(p1, p0 + 0.5 * (w - p0), atol=1e-6)
    moved = sum(float((p1 - p0).pow(2).sum()) for p0, p1 in zip(phi, after)) ** 0.5
    assert norm == pytest.approx(moved, rel=1e-4) and norm > 0


def test_adaptation_lowers_the_task_loss():
    cfg = _cfg(**{"meta.inner_lr": 0.02})
    model = build_meta_model(cfg, seed=1)
    task = Family("copy", 2)
    ids, labels = sample_batch(task, 64, cfg.meta.seq_len, torch.Generator().manual_seed(3))
    with torch.no_grad():
        before, _ = task_loss(model, ids, labels)
    adapt(model, task, 30, cfg, torch.Generator().manual_seed(4))
    with torch.no_grad():
        after, _ = task_loss(model, ids, labels)
    assert after.item() < before.item() - 0.05


def test_lora_meta_learning_touches_only_the_adapters():
    pytest.importorskip("peft")
    cfg = _cfg(**{"meta.lora": True, "lora.r": 2, "lora.alpha": 4})
    model = build_meta_model(cfg, seed=0)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora" in n for n in trainable)
    reptile_step(model, [Family("copy", 1), Family("reverse", 2)], cfg, torch.Generator().manual_seed(0))
    named = dict(model.named_parameters())
    assert all(torch.equal(named[n], v) for n, v in frozen.items())
    assert any(not torch.equal(named[n], v) for n, v in trainable.items())


def test_second_order_maml_gradient_matches_a_finite_difference():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    x, y = torch.randn(6, 1, dtype=torch.double), torch.randn(6, 1, dtype=torch.double)
    xq, yq = torch.randn(6, 1, dtype=torch.double), torch.randn(6, 1, dtype=torch.double)
    from torch.func import functional_call

    def outer(params, second_order):
        adapted = maml_inner(net, params, x, y, steps=2, lr=0.1, second_order=second_order)
        return torch.nn.functional.mse_loss(functional_call(net, adapted, (xq,)), yq)

    params = {n: p.detach().clone().requires_grad_() for n, p in net.named_parameters()}
    g2 = torch.autograd.grad(outer(params, True), list(params.values()))
    g1 = torch.autograd.grad(outer(params, False), list(params.values()))
    # Finite difference of the post-adaptation loss along one weight.
    name, eps = "0.weight", 1e-6
    def loss_at(delta):
        p = {n: v.detach().clone() for n, v in params.items()}
        p[name][3, 0] += delta
        p = {n: v.requires_grad_() for n, v in p.items()}
        return outer(p, True).item()
    fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    i = list(params).index(name)
    assert g2[i][3, 0].item() == pytest.approx(fd, rel=1e-4, abs=1e-8)
    # The first-order gradient drops the Hessian term, so it differs.
    assert abs(g1[i][3, 0].item() - fd) > 1e-6


@pytest.mark.slow
def test_train_meta_cli_prints_curves_for_the_three_starts(tmp_path):
    from mgpt.cli import app

    out = tmp_path / "meta"
    args = ["train", "meta", "meta_tiny", "--out", str(out), "-q", "--seeds", "2"]
    for key, value in {"max_iters": 2, "batch_size": 8, "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16,
                       "meta.seq_len": 4, "meta.inner_steps": 2, "meta.train_families": 4, "meta.eval_families": 2,
                       "meta.eval_steps": "[0, 1, 3]", "threads": 1}.items():
        args += ["--set", f"{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("| meta |", "| union |", "| base |", "loss @3", "acc @0"):
        assert name in result.output
    curves = json.loads((out / "meta_curves.json").read_text())
    assert set(curves["curves"]) == {"meta", "base", "union"}
    assert all(len(v) == 2 for v in curves["curves"]["meta"].values())  # one entry per seed
    assert (out / "config.json").is_file()
    bad = CliRunner().invoke(app, ["train", "meta", "meta_tiny", "--set", "meta.inner_steps=0"])
    assert bad.exit_code == 2 and "inner_steps" in bad.output
