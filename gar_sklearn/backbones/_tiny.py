"""A tiny convolutional backbone for fast tests and examples."""

from torch import nn

__all__ = ["TinyConvNet"]


def _block(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class TinyConvNet(nn.Module):
    """Three strided convolution blocks and global average pooling (about 6k weights).

    Registered as the ``"tiny"`` backbone. It has no pretrained weights: use
    ``weights=None`` (or a file written from one).
    """

    n_features = 32

    def __init__(self):
        super().__init__()
        self.block1 = _block(3, 8)
        self.block2 = _block(8, 16)
        self.block3 = _block(16, self.n_features)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))

    def forward(self, x):
        return self.pool(self.block3(self.block2(self.block1(x))))

    def split(self):
        stages = [(name, getattr(self, name)) for name in ("block1", "block2", "block3", "pool")]
        return stages, self.n_features
