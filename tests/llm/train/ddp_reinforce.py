"""Run by torchrun in tests/llm/test_cuda.py (NCCL) and tests/llm/train/test_grpo.py (gloo on CPU):
pretrain a tiny model, then RFT, DPO and GRPO from it, each wrapping its model in DDP.

    python -m torch.distributed.run --standalone --nproc_per_node=N tests/ddp_reinforce.py TMP BASE_CONFIG_JSON

The base config's ``device`` is every step's device. Each rank writes what it did to
``TMP/rank<N>.json`` (its printed lines interleave with the other ranks'). Not a test module
itself (no test_ prefix): pytest does not collect it.
"""
import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.parallel

from mgpt.llm.eval.code import CheckResult
from mgpt.llm.eval.tasks import load_tasks
from mgpt.llm.train.config import load_config
from mgpt.llm.train.dpo import dpo
from mgpt.llm.train.grpo import grpo
from mgpt.llm.train.pretrain import pretrain
from mgpt.llm.train.rft import rft

# Count the models wrapped in DDP: every trainer must wrap its own under torchrun.
wraps = []
_init = torch.nn.parallel.DistributedDataParallel.__init__


def counting_init(self, *args, **kwargs):
    wraps.append(type(args[0]).__name__)
    _init(self, *args, **kwargs)


torch.nn.parallel.DistributedDataParallel.__init__ = counting_init

tmp = Path(sys.argv[1])
base_cfg = json.loads(sys.argv[2])
done = {}
r = pretrain(load_config(None, base_cfg), progress=True)
done["pretrain"] = r.iter_num
base, device = base_cfg["out_dir"], base_cfg["device"]
tasks = load_tasks("train")[:2]



def sample(model, tokenizer, messages, k):
    assert next(model.parameters()).device.type == device
    return ["yes", "no", "yes", "no"][:k]



def check(task, code):
    ok = code.strip() == "yes"
    return CheckResult(passed=ok, tests_passed=int(ok), tests_failed=int(not ok))


common = {"init_from": base, "device": device, "block_size": 64, "batch_size": 4, "log_interval": 5,
          "data.keep": "end", "reinforce.k": 4, "reinforce.steps": 6, "reinforce.lr": 3e-3}
res = rft(load_config(None, {**common, "out_dir": str(tmp / "rft")}), tasks, check=check,
          extract=lambda a: a, sample=sample, progress=True)
done["rft"] = len(res.iterations)
pairs = [{"messages": [{"role": "user", "content": f"say {i}"}], "chosen": "yes", "rejected": "no"}
         for i in range(6)]
res = dpo(load_config(None, {**common, "out_dir": str(tmp / "dpo"), "reinforce.beta": 0.5}), pairs, progress=True)
done["dpo"] = [res.steps, res.first_loss, res.last_loss]
res = grpo(load_config(None, {**common, "out_dir": str(tmp / "grpo")}), tasks[:1], check=check,
           extract=lambda a: a, sample=sample, progress=True)
done["grpo"] = res.steps
done["ddp_wraps"] = len(wraps)
if device == "cuda":
    done["cuda_mem"] = torch.cuda.max_memory_allocated()
(tmp / f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(done))
