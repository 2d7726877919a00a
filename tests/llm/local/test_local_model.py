"""``hf:<dir>``: a local transformers checkpoint behind the same model interface."""

import asyncio

import pytest

pytest.importorskip("torch", reason="the local backend needs the [train] extra")

from mgpt.agents import Team, UserRequirement
from mgpt.llm import ChatMessage, ModelConfigError, infer_model
from mgpt.llm.local.testing import make_tiny_checkpoint
from mgpt.llm.local.generate import generate_text, load_model
from mgpt.llm.local.model import LocalModel
from mgpt.roles import Role


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), chat_template=True)


def test_spec_builds_a_local_model(checkpoint):
    model = infer_model(f"hf:{checkpoint}")
    assert isinstance(model, LocalModel) and model.name == f"hf:{checkpoint.name}"


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ModelConfigError, match="config.json"):
        infer_model(f"hf:{tmp_path}")


def test_sampling_options_as_params_keywords_and_attributes(checkpoint):
    from mgpt.llm.local.sampling import SamplingParams

    model = LocalModel(checkpoint, sampling=SamplingParams(max_tokens=16, temperature=0.5), max_new_tokens=8)
    assert (model.sampling.max_tokens, model.sampling.temperature, model.sampling.seed) == (8, 0.5, None)
    model.temperature, model.seed = 0.9, 4
    assert model.sampling == SamplingParams(max_tokens=8, temperature=0.9, seed=4)
    assert LocalModel(checkpoint).sampling.seed == 0 and LocalModel(checkpoint).max_new_tokens == 1024
    with pytest.raises(ModelConfigError, match="temperature"):
        LocalModel(checkpoint, temperature=-1)
    with pytest.raises(ModelConfigError, match="top_p"):
        model.top_p = 0
    with pytest.raises(ModelConfigError, match="stop"):
        LocalModel(checkpoint, stop=["\n"])


def test_complete_and_stream_agree_with_direct_generation(checkpoint):
    model = LocalModel(checkpoint, max_new_tokens=8)
    messages = [ChatMessage(role="user", content="hello there")]
    completion = asyncio.run(model.complete(messages))
    direct = generate_text(load_model(checkpoint), [m.model_dump() for m in messages], max_new_tokens=8, seed=0)
    assert completion.text == direct.text
    assert completion.usage.completion_tokens == direct.completion_tokens > 0
    assert completion.usage.prompt_tokens == direct.prompt_tokens

    async def collect():
        pieces, final = [], None
        async for chunk in model.stream(messages):
            pieces.append(chunk.delta)
            final = chunk.completion or final
        return "".join(pieces), final

    streamed, final = asyncio.run(collect())
    assert streamed == completion.text == final.text


def test_a_role_runs_on_the_local_model(checkpoint):
    from mgpt.actions import Action

    class Say(Action):
        async def run(self, ctx):
            return await self.ask(ctx.news[-1].content)

    team = Team(model=LocalModel(checkpoint, max_new_tokens=4))
    team.hire(Role(name="Speaker", actions=[Say], watch=[UserRequirement]))
    result = asyncio.run(team.run("hello"))
    assert result.stop_reason == "idle"
    assert result.spend.calls == 1 and result.spend.completion_tokens > 0
    assert result.spend.cost_known and result.spend.cost == 0
