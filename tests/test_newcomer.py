"""Issue 15: what a newcomer meets first: messages for a mistyped model, where files go, the tables people
expect (torchinfo's summary, fvcore's flop_count_table) and the committed reports' texts."""

import pytest

from scaleprof.cli import main
from scaleprof.errors import ScaleprofError
from scaleprof.zoo.registry import closest_names, resolve


def test_unknown_model_suggests_the_closest_names_in_one_short_line(capsys):
    assert closest_names("efficientnet_bo")[0] == "efficientnet_b0"  # ties keep the registry's order
    assert closest_names("ResNet18")[0] == "resnet18"
    assert closest_names("qqqqq") == []
    with pytest.raises(ScaleprofError) as exc:
        resolve("efficientnet_bo")
    assert "did you mean efficientnet_b0, " in str(exc.value) and "`scaleprof zoo`" in str(exc.value)
    assert main(["profile", "efficientnet_bo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 200 and "mobilenet_v2" not in err  # not all 34
    assert main(["profile", "qqqqq"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" not in err and "scaleprof zoo" in err
