"""The kit's nets in PyTorch, for npm run bench:vs-pytorch (bench/vsPytorch.ts runs this once per round).

Same layers, widths, batch norm settings (momentum 0.1 = the kit's 0.9, eps 1e-5), He-normal convs, the
same training step as the kit's train(): random uint8 NHWC images, per-image random crop (zero pad 4) and
flip on the uint8 batch, conversion to normalised float32, SGD with momentum 0.9 and weight decay 5e-4,
softmax cross-entropy, loss.item() after every step (the kit reads its loss every step too).
Channels-last float32, a fixed thread count. Prints one JSON line.

    python bench/torch_nets.py --arch resnet-9 --images 2560 --batch 128 --threads 2
"""
import argparse
import json
import platform
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = torch.tensor([125.3, 123.0, 113.9]).view(1, 3, 1, 1)
STD = torch.tensor([63.0, 62.1, 66.7]).view(1, 3, 1, 1)


def conv_bn(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = conv_bn(c, c)
        self.b = conv_bn(c, c)

    def forward(self, x):
        return x + self.b(self.a(x))


class ResNet9(nn.Module):
    """Page's DAWNBench ResNet-9 as src/models/resnet.ts buildResNet9 builds it (width = prep filters)."""

    def __init__(self, w, classes=10):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(3, w),
            conv_bn(w, 2 * w), nn.MaxPool2d(2), Residual(2 * w),
            conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),
            conv_bn(4 * w, 8 * w), nn.MaxPool2d(2), Residual(8 * w),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(8 * w, classes)

    def forward(self, x):
        return self.fc(self.body(x)) * 0.125


class VggSmall(nn.Module):
    """src/models/vgg.ts buildVggSmall: conv32x2-pool-conv64x2-pool-dense256-dense10, ReLU, dropout."""

    def __init__(self, classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2), nn.Dropout(0.25),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
            nn.Linear(64 * 8 * 8, 256), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(256, classes),
        )

    def forward(self, x):
        return self.net(x)


NETS = {
    'vgg-small': lambda: VggSmall(),
    'resnet-9': lambda: ResNet9(16),
    'resnet-9w32': lambda: ResNet9(32),
    'resnet-9w64': lambda: ResNet9(64),
}


def he_init(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity='relu')


def augment(batch_u8, gen, pad=4):
    """Per-image random crop of the zero-padded image and horizontal flip, on uint8 NHWC (as src/train/augment.ts)."""
    n, h, w, _ = batch_u8.shape
    padded = F.pad(batch_u8.permute(0, 3, 1, 2), (pad, pad, pad, pad)).permute(0, 2, 3, 1)
    offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(batch_u8)
    for i in range(n):
        y, x = int(offs[i, 0]), int(offs[i, 1])
        img = padded[i, y:y + h, x:x + w]
        out[i] = img.flip(1) if flips[i] else img
    return out


def to_input(batch_u8):
    x = batch_u8.permute(0, 3, 1, 2).float()
    return ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--arch', required=True, choices=sorted(NETS))
    p.add_argument('--images', type=int, default=2560)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--epochs', type=int, default=2, help='timed: the last one (the first builds kernels and optimizer state)')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    # The same pseudo-random pixels as bench/vsPytorch.ts feeds the kit (content does not matter for speed).
    idx = torch.arange(a.images * 32 * 32 * 3, dtype=torch.int64)
    images = (((idx * 2654435761) & 0xFFFFFFFF) >> 24).to(torch.uint8).view(a.images, 32, 32, 3)
    labels = torch.arange(a.images) % 10

    model = NETS[a.arch]()
    he_init(model)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    train_rate = 0.0
    for _ in range(a.epochs):
        model.train()
        perm = torch.randperm(a.images, generator=gen)
        t0 = time.perf_counter()
        seen = 0
        for s in range(0, a.images, a.batch):
            b = perm[s:s + a.batch]
            x = to_input(augment(images[b], gen))
            loss = F.cross_entropy(model(x), labels[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
            seen += len(b)
        train_rate = seen / (time.perf_counter() - t0)

    model.eval()
    with torch.inference_mode():
        # One untimed batch first, as on the kit's side: eval mode builds its own kernels on the first call.
        torch.softmax(model(to_input(images[:256])), dim=1).numpy()
        t0 = time.perf_counter()
        for s in range(0, a.images, 256):
            torch.softmax(model(to_input(images[s:s + 256])), dim=1).numpy()
        infer_rate = a.images / (time.perf_counter() - t0)

    print(json.dumps({
        'arch': a.arch, 'batch': a.batch, 'images': a.images, 'threads': torch.get_num_threads(),
        'params': sum(t.numel() for t in model.parameters()),
        'trainImgPerSec': round(train_rate, 1), 'inferImgPerSec': round(infer_rate, 1),
        'torch': torch.__version__, 'python': platform.python_version(),
        'mkldnn': torch.backends.mkldnn.is_available(),
    }))


if __name__ == '__main__':
    main()
