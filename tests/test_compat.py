import subprocess
import sys


def test_torchvision_imports_through_compat_in_a_fresh_interpreter():
    code = ("from neurflow_graph._compat import import_torchvision; tv = import_torchvision(); "
            "m = tv.models.resnet18(); print(type(m).__name__, m.fc.out_features)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ResNet", "1000"]


def test_compat_is_idempotent():
    from neurflow_graph._compat import import_torchvision

    assert import_torchvision() is import_torchvision()
