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


def test_plain_import_torchvision_works_after_import_neurflow_graph():
    """The README's own-model example: `import neurflow_graph`, then torchvision as usual, in a fresh interpreter."""
    code = ("import neurflow_graph, torchvision; from torchvision.models import resnet18; m = resnet18(); "
            "print(type(m).__name__, m.fc.out_features, 'torchvision' in __import__('sys').modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ResNet", "1000", "True"]


def test_import_neurflow_graph_alone_does_not_import_torchvision():
    code = "import sys, neurflow_graph; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
