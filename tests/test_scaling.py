"""Chapter 1's scaling experiment: counts, FLOPs, the power-law fit, the runner and the shipped results."""
import json
import math
import shutil

import numpy as np
import pytest
import torch

from course_lib.data import ChecksumError
from course_lib.transformer.checkpoint import CHECKPOINTS, write_checksums
from course_lib.transformer.gpt import GPT2Config, GPT2LMHeadModel
from course_lib.transformer.lm_data import encode_corpus, train_lm_tokenizer
from course_lib.transformer.scaling import (SIZES, ModelSize, ScalingConfig, chinchilla_optimal_tokens,
                                            fit_power_law, fit_pure_power_law, flops_per_token, kaplan_parameters,
                                            load_results, make_model, non_embedding_parameters, encode_prefix,
                                            run_size, tokens_per_parameter, training_flops)

SHIPPED = CHECKPOINTS / "scaling"


# ----------------------------------------------------------------------------- counting and FLOPs

@pytest.mark.parametrize("L, d, inner", [(1, 16, None), (3, 48, None), (2, 32, 80)])
def test_non_embedding_parameters_leave_out_both_tables(L, d, inner):
    cfg = GPT2Config(vocab_size=300, n_positions=20, n_embd=d, n_layer=L, n_head=4, n_inner=inner)
    model = GPT2LMHeadModel(cfg)
    total = sum(p.numel() for p in model.parameters())
    n = non_embedding_parameters(model)
    assert n == total - 300 * d - 20 * d
    # the FLOP count's own parameter formula agrees with the model: 6 N per token
    assert flops_per_token(cfg)["non_embedding"] == 6 * n


def test_kaplan_approximation_is_close_for_wide_models():
    model = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=8, n_embd=128, n_layer=2, n_head=4))
    n = non_embedding_parameters(model)
    assert kaplan_parameters(2, 128) == 12 * 2 * 128 ** 2
    assert abs(n - kaplan_parameters(2, 128)) / n < 0.02          # biases and LayerNorms: < 2 %


def test_training_flops_is_6nd():
    assert training_flops(1e6, 2e7) == pytest.approx(1.2e14)
    np.testing.assert_allclose(training_flops([1e3, 1e4], 1e5), [6e8, 6e9])
    assert tokens_per_parameter(2e7, 1e6) == pytest.approx(20.0)
    assert chinchilla_optimal_tokens(1e6) == pytest.approx(2e7)
    assert chinchilla_optimal_tokens(70e9) == pytest.approx(1.4e12)       # Chinchilla: 70B params, 1.4T tokens


def test_flops_per_token_terms():
    cfg = GPT2Config(vocab_size=1024, n_positions=64, n_embd=32, n_layer=2, n_head=2)
    f = flops_per_token(cfg)
    assert f["attention"] == 6 * 2 * 64 * 32
    assert f["output_layer"] == 6 * 32 * 1024
    assert f["total"] == pytest.approx(f["non_embedding"] + f["attention"] + f["output_layer"])
    assert flops_per_token(cfg, n_ctx=8)["attention"] == 6 * 2 * 8 * 32


@pytest.mark.parametrize("bad", [0, -5, float("nan"), [], [1e3, -1]])
def test_flops_refuse_bad_counts(bad):
    with pytest.raises(ValueError, match="must be finite numbers > 0"):
        training_flops(bad, 1e6)


def test_fit_refuses_non_numbers():
    with pytest.raises(TypeError, match="list/array of numbers"):
        fit_power_law(["small", "big", "huge"], [5.0, 4.0, 3.0])
    with pytest.raises(TypeError, match="losses must be"):
        fit_power_law([1e3, 1e4, 1e5], ["a", "b", "c"])


def test_count_functions_refuse_wrong_types():
    with pytest.raises(TypeError, match="GPT2LMHeadModel"):
        non_embedding_parameters(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="GPT2Config"):
        flops_per_token({"n_embd": 4})


# ----------------------------------------------------------------------------- the fit

def test_fit_recovers_alpha_from_exact_data():
    n = np.logspace(3, 6, 7)
    fit = fit_power_law(n, 12.0 * n ** -0.3 + 3.0)                # L = a N^-alpha + c
    assert fit.alpha == pytest.approx(0.3, abs=1e-4)
    assert fit.a == pytest.approx(12.0, rel=1e-3)
    assert fit.c == pytest.approx(3.0, abs=1e-4)
    assert fit.rmse < 1e-6
    assert fit(1e4) == pytest.approx(12.0 * 1e4 ** -0.3 + 3.0, rel=1e-6)


def test_fit_recovers_alpha_from_noisy_data():
    rng = np.random.default_rng(0)
    n = np.logspace(3, 6, 10)
    loss = 8.0 * n ** -0.25 + 4.0 + rng.normal(0, 0.005, n.size)
    fit = fit_power_law(n, loss)
    assert abs(fit.alpha - 0.25) < 3 * fit.alpha_err + 0.02         # within the fit's own error bar
    assert 0 < fit.alpha_err < 0.2


def test_pure_power_law_is_a_line_in_log_log():
    n = np.logspace(5, 9, 6)
    alpha, n_c = fit_pure_power_law(n, (8.8e13 / n) ** 0.076)      # Kaplan's L(N) = (N_c / N)^0.076
    assert alpha == pytest.approx(0.076, rel=1e-6)
    assert n_c == pytest.approx(8.8e13, rel=1e-4)


def test_fit_with_three_points_has_no_error_bars():
    fit = fit_power_law([1e3, 1e4, 1e5], [5.0, 4.5, 4.2])
    assert fit.n_points == 3 and math.isnan(fit.alpha_err)


@pytest.mark.parametrize("n, loss, words", [
    ([1e3, 1e4], [5.0, 4.0], "at least 3 distinct model sizes"),
    ([1e3, 1e3, 1e3], [5.0, 4.9, 4.8], "at least 3 distinct model sizes"),
    ([1e3, 1e4, 1e5], [5.0, 4.0], "same length"),
    ([1e3, 0, 1e5], [5.0, 4.0, 3.0], "finite numbers > 0"),
    ([1e3, 1e4, 1e5], [5.0, float("nan"), 3.0], "losses must be finite"),
])
def test_fit_refuses_bad_points(n, loss, words):
    with pytest.raises(ValueError, match=words):
        fit_power_law(n, loss)


# ----------------------------------------------------------------------------- the runner

def test_scaling_config_checks():
    assert ScalingConfig().max_steps == 2 ** 19 // (16 * 64)
    with pytest.raises(ValueError, match="multiple of block_size"):
        ScalingConfig(n_tokens=1000)
    with pytest.raises(ValueError, match="warmup_steps"):
        ScalingConfig(n_tokens=16 * 64 * 4, warmup_steps=10)


def test_encode_prefix_equals_prefix_of_full_encoding():
    text = "".join(f" the {w} of the {w}s is here , said {i} .\n" for i, w in
                   enumerate(["cat", "dog", "bird", "fish", "horse"] * 20))
    tok = train_lm_tokenizer(text.splitlines(), 300)
    full = encode_corpus(tok, text)
    chars_per_token = 2 * len(text) / len(full)                     # a safe margin for this tokenizer
    assert torch.equal(encode_prefix(tok, text, 50, chars_per_token), full[:50])
    with pytest.raises(ValueError, match="too short"):
        encode_prefix(tok, text, len(full) + 10)


def test_run_size_trains_and_reports():
    cfg = ScalingConfig(vocab_size=32, block_size=8, per_device_train_batch_size=4, n_tokens=8 * 4 * 40,
                        warmup_steps=4, eval_steps=20, eval_blocks=8, learning_rate=1e-2)
    pattern = torch.arange(32).repeat(200)                          # a predictable stream: loss must fall
    data = {"train_blocks": torch.stack([pattern[i * 8:i * 8 + 9] for i in range(160)]),      # (160, 9)
            "valid_blocks": torch.stack([pattern[i * 8 + 3:i * 8 + 12] for i in range(16)])}  # (16, 9)
    row = run_size(ModelSize("tiny", 1, 16, 2), cfg, data, seed=0, log=None)
    assert row["non_embedding_params"] == non_embedding_parameters(make_model(ModelSize("tiny", 1, 16, 2), cfg))
    assert row["tokens"] == cfg.n_tokens and row["flops_6nd"] == 6 * row["non_embedding_params"] * cfg.n_tokens
    assert row["valid_loss"] < math.log(32) - 1.0                   # learned the cycle, far below uniform
    assert row["history"]["eval_step"] == [0, 20, 40]
    with pytest.raises(ValueError, match="prepare_data"):
        run_size(SIZES[0], cfg, {"train_blocks": data["train_blocks"][:10], "valid_blocks": data["valid_blocks"]})
    with pytest.raises(TypeError, match="ModelSize"):
        run_size("L1-d16", cfg, data)


# ----------------------------------------------------------------------------- the shipped results

shipped = pytest.mark.skipif(not (SHIPPED / "checksums.json").exists(),
                             reason="run tools/scaling_experiment.py to create checkpoints/scaling")


@shipped
def test_shipped_results_load_and_refit():
    r = load_results()
    main = [x for x in r["runs"] if x["seed"] == 0]
    assert [x["name"] for x in main] == [s.name for s in SIZES]
    n = [x["non_embedding_params"] for x in main]
    assert n == sorted(n) and n[-1] / n[0] > 100                   # two decades of N at least
    for x in main:
        assert x["non_embedding_params"] == non_embedding_parameters(make_model(
            ModelSize(x["name"], x["n_layer"], x["n_embd"], x["n_head"]), ScalingConfig(**r["config"])))
    fit = fit_power_law(n, [x["valid_loss"] for x in main])
    assert fit.alpha == pytest.approx(r["fit"]["alpha"], rel=1e-6)
    assert main[-1]["valid_loss"] < main[0]["valid_loss"]          # bigger is better under the same budget


@shipped
def test_altered_results_are_refused(tmp_path):
    folder = tmp_path / "scaling"
    shutil.copytree(SHIPPED, folder)
    assert load_results(folder)["config"]["n_tokens"] > 0
    r = json.loads((folder / "results.json").read_text())
    r["runs"][0]["valid_loss"] -= 0.5                               # a better-looking number
    (folder / "results.json").write_text(json.dumps(r))
    with pytest.raises(ChecksumError, match="results.json was altered"):
        load_results(folder)
    (folder / "checksums.json").unlink()
    with pytest.raises(FileNotFoundError, match="checksums.json is missing"):
        load_results(folder)


def test_load_results_needs_the_result_files(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    write_checksums(tmp_path)
    with pytest.raises(FileNotFoundError, match="curves.json"):
        load_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_results(tmp_path / "nowhere")
