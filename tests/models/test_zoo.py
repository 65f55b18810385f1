"""The network zoo against published MAC and parameter counts, and hand-checked layers.

MACs here are the multiply-accumulates of convolutions, fully-connected layers and matmuls
(the convention of the papers' "multiply-adds" and of torchvision's "GFLOPS" column, which
counts one multiply-add as one operation). Parameters are conv / FC weights and biases; the
zoo has no batch-norm layers (they fold into the convs at inference), so published counts
that include BN parameters are a little higher, as noted per test.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import Layer, WorkloadError
from models.zoo import get_network, names

IMAGENET = [n for n in names() if n not in ("unet", "bert_base_layer")]

# (network, reference MACs at 224x224, relative tolerance, where the reference comes from)
PUBLISHED_MACS = [
    ("resnet50", 4.09e9, 0.005,
     "torchvision ResNet-50 (v1.5, stride on the 3x3): 4.09 GFLOPS; the paper's 3.8e9 is v1 (stride on the 1x1)"),
    ("resnet18", 1.81e9, 0.005, "torchvision 1.81 GFLOPS; He et al. 2016 Table 1: 1.8e9 multiply-adds"),
    ("vgg16", 15.47e9, 0.005, "torchvision 15.47 GFLOPS; commonly quoted as 15.5e9 (Simonyan & Zisserman config D)"),
    ("mobilenet_v2", 300e6, 0.005, "Sandler et al. 2018, Table 4: 300M multiply-adds"),
    ("mobilenet_v3_large", 219e6, 0.015,
     "Howard et al. 2019, Table 3: 219M MAdds (the paper also counts SE scaling / h-swish multiplies; "
     "conv + FC alone is 1.1 % lower, torchvision lists 0.22 GFLOPS)"),
    ("mnasnet1_0", 317e6, 0.01,
     "Tan et al., arXiv:1807.11626v1 Table 1: MnasNet (B1, no SE) 317M multiply-adds; torchvision 0.31 GFLOPS"),
    ("squeezenet1_1", 0.35e9, 0.01, "torchvision SqueezeNet 1.1: 0.35 GFLOPS (two significant digits)"),
    ("alexnet", 0.71e9, 0.01,
     "torchvision AlexNet (single-column variant of Krizhevsky 2014, 64-192-384-256-256 channels): 0.71 GFLOPS; "
     "the original grouped two-GPU AlexNet is ~0.72e9 and is not what the zoo builds"),
]


@pytest.mark.parametrize("name,ref,tol,source", PUBLISHED_MACS, ids=[p[0] for p in PUBLISHED_MACS])
def test_macs_match_published(name, ref, tol, source):
    net = get_network(name)
    assert net.resolution == 224
    assert abs(net.macs - ref) / ref <= tol, f"{name}: {net.macs:.4g} vs {ref:.4g} ({source})"


# (network, reference parameters, relative tolerance, source and what differs)
PUBLISHED_PARAMS = [
    ("resnet50", 25.6e6, 0.01, "torchvision 25,557,032 incl. 53,120 BN parameters (excluded here)"),
    ("resnet18", 11.7e6, 0.01, "torchvision 11,689,512 incl. 9,600 BN parameters (excluded here)"),
    ("mobilenet_v2", 3.4e6, 0.03, "Sandler et al. 2018, Table 4: 3.4M (BN excluded here; torchvision 3.50M with BN)"),
    ("vgg16", 138e6, 0.005, "Simonyan & Zisserman 2015, Table 2: 138 million (no BN)"),
    ("mobilenet_v3_large", 5.4e6, 0.015, "Howard et al. 2019, Table 3: 5.4M (BN excluded here)"),
    ("alexnet", 61.1e6, 0.005, "torchvision AlexNet: 61.1M (no BN)"),
]


@pytest.mark.parametrize("name,ref,tol,source", PUBLISHED_PARAMS, ids=[p[0] for p in PUBLISHED_PARAMS])
def test_params_match_published(name, ref, tol, source):
    net = get_network(name)
    assert abs(net.params - ref) / ref <= tol, f"{name}: {net.params:,} vs {ref:.4g} ({source})"


def test_unet_original_paper_count():
    """Ronneberger et al. 2015, Fig. 1: 572x572x1 input, unpadded 3x3 convs, 2x2 up-convs, 388x388x2 output.
    Every feature-map size below is read off the figure; the MACs are summed here independently."""
    convs3x3 = [  # (in channels, out channels, output side)
        (1, 64, 570), (64, 64, 568), (64, 128, 282), (128, 128, 280), (128, 256, 138), (256, 256, 136),
        (256, 512, 66), (512, 512, 64), (512, 1024, 30), (1024, 1024, 28),
        (1024, 512, 54), (512, 512, 52), (512, 256, 102), (256, 256, 100),
        (256, 128, 198), (128, 128, 196), (128, 64, 390), (64, 64, 388)]
    upconvs = [(1024, 512, 56), (512, 256, 104), (256, 128, 200), (128, 64, 392)]  # output side
    expected = (sum(ci * co * 9 * s * s for ci, co, s in convs3x3)
                # a 2x2 stride-2 up-conv puts exactly one kernel tap on each output pixel
                + sum(ci * co * s * s for ci, co, s in upconvs)
                + 64 * 2 * 388 * 388)  # final 1x1 conv to 2 classes
    net = get_network("unet")
    assert net.resolution == 572
    assert net.macs == expected
    assert len(net) == 18 + 4 + 1
    head = net.layers[-1]
    assert (head.K, head.P, head.Q) == (2, 388, 388)
    # Weights + biases; the up-conv is stored as a 1x1 conv to 4*C_out, which counts its bias 4x
    # (3 * (512+256+128+64) = 2,880 extra of ~31 M).
    params = (sum(ci * co * 9 + co for ci, co, _ in convs3x3) + sum(ci * co * 4 + co for ci, co, _ in upconvs)
              + 64 * 2 + 2)
    assert net.params - params == 3 * (512 + 256 + 128 + 64)


def test_unet_rejects_sizes_that_do_not_tile():
    with pytest.raises(WorkloadError, match="16\\*m\\+124"):
        get_network("unet", resolution=224)
    assert get_network("unet", resolution=188).layers[-1].P == 4  # smallest valid input: 4x4 output


def test_bert_base_layer_by_formula():
    """Devlin et al. 2019, BERT-base: hidden d=768, 12 heads, FFN 3072; one encoder layer at sequence s=128."""
    s, d, h, f = 128, 768, 12, 3072
    qkv_out = 4 * s * d * d          # Q, K, V and the attention output projection
    attention = 2 * h * s * s * (d // h)  # QK^T and softmax(.)V for each of the 12 heads of 64
    ffn = 2 * s * d * f
    net = get_network("bert_base_layer")
    assert net.macs == qkv_out + attention + ffn == 931_135_488
    # 4 projections d x d + bias, FFN d x f + f and f x d + d; LayerNorm's 2*2*768 are not MAC parameters.
    assert net.params == 4 * (d * d + d) + (d * f + f) + (f * d + d) == 7_084_800
    scores = next(l for l in net.layers if l.name == "attention.self.scores")
    assert (scores.op, scores.G, scores.N, scores.C, scores.K, scores.params) == ("matmul", 12, 128, 64, 128, 0)
    assert get_network("bert_base_layer", seq_len=512).macs == 512 * (4 * d * d + 2 * d * f) + 2 * 512 * 512 * d
    with pytest.raises(WorkloadError, match="seq_len"):
        get_network("bert_base_layer", resolution=224)


def _dims(layer: Layer) -> dict:
    return {**layer.dims, "stride": layer.stride, "padding": layer.padding, "op": layer.op}


def test_mobilenet_v2_block_by_hand():
    """features.2 = first block of stage (t=6, c=24, n=2, s=2), input 16 x 112 x 112 at 224."""
    net = {l.name: l for l in get_network("mobilenet_v2")}
    expand = net["features.2.conv.0.0"]
    dw = net["features.2.conv.1.0"]
    project = net["features.2.conv.2"]
    assert _dims(expand) == dict(G=1, N=1, K=96, C=16, P=112, Q=112, R=1, S=1, stride=1, padding=0, op="conv")
    assert _dims(dw) == dict(G=96, N=1, K=1, C=1, P=56, Q=56, R=3, S=3, stride=2, padding=1, op="dwconv")
    assert _dims(project) == dict(G=1, N=1, K=24, C=96, P=56, Q=56, R=1, S=1, stride=1, padding=0, op="conv")
    assert (expand.macs, dw.macs, project.macs) == (96 * 16 * 112 * 112, 96 * 9 * 56 * 56, 24 * 96 * 56 * 56)
    assert (expand.params, dw.params, project.params) == (16 * 96, 96 * 9, 96 * 24)
    # the block's input is 16 x 112 x 112 including the depthwise halo: (56-1)*2 + 3 = 113 rows read
    assert dw.H == 113 and dw.input_elems == 96 * 113 * 113


def test_mobilenet_v3_se_block_by_hand():
    """features.4 of MobileNetV3-Large (Howard et al. Table 1: 5x5, exp 72, out 40, SE, stride 2),
    input 24 x 56 x 56; SE squeeze = 72/4 = 18 rounded up to a multiple of 8 = 24."""
    net = {l.name: l for l in get_network("mobilenet_v3_large")}
    block = [(n, l) for n, l in net.items() if n.startswith("features.4.")]
    assert [n for n, _ in block] == ["features.4.block.0.0", "features.4.block.1.0", "features.4.block.2.fc1",
                                     "features.4.block.2.fc2", "features.4.block.3.0"]
    got = [_dims(l) for _, l in block]
    assert got == [
        dict(G=1, N=1, K=72, C=24, P=56, Q=56, R=1, S=1, stride=1, padding=0, op="conv"),
        dict(G=72, N=1, K=1, C=1, P=28, Q=28, R=5, S=5, stride=2, padding=2, op="dwconv"),
        dict(G=1, N=1, K=24, C=72, P=1, Q=1, R=1, S=1, stride=1, padding=0, op="fc"),
        dict(G=1, N=1, K=72, C=24, P=1, Q=1, R=1, S=1, stride=1, padding=0, op="fc"),
        dict(G=1, N=1, K=40, C=72, P=28, Q=28, R=1, S=1, stride=1, padding=0, op="conv"),
    ]
    assert net["features.4.block.2.fc1"].params == 72 * 24 + 24


def test_resnet50_structure_by_hand():
    net = get_network("resnet50")
    names_ = [l.name for l in net]
    assert names_[:5] == ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.0.conv3", "layer1.0.downsample.0"]
    assert names_[-1] == "fc" and len(net) == 1 + 3 * 16 + 4 + 1
    l2 = {l.name: l for l in net}["layer2.0.conv2"]  # v1.5: the stride sits on the 3x3
    assert (l2.K, l2.C, l2.P, l2.R, l2.stride) == (128, 128, 28, 3, 2)
    kinds = [a.kind for a in net.aux]
    assert kinds.count("add") == 16 and kinds.count("pool") == 2  # 16 residual adds, max-pool, avg-pool


def test_mobilenet_v2_residual_adds():
    # stride-1 blocks whose input and output widths agree: 1 + 2 + 3 + 2 + 2 (Table 2, repeats after the first)
    assert [a.kind for a in get_network("mobilenet_v2").aux].count("add") == 10


@pytest.mark.parametrize("name", names())
def test_every_network_is_well_formed(name):
    net = get_network(name)
    assert net.macs > 0 and len(net.unique_shapes()) <= len(net)
    for l in net:
        if l.op == "dwconv":
            assert l.K == l.C == 1 and l.G > 1
        if l.op == "matmul":
            assert l.params == 0
    assert all(a.in_elems > 0 and a.out_elems > 0 for a in net.aux)


def test_names_are_forgiving_and_unknown_names_list_the_zoo():
    assert get_network("ResNet-50").macs == get_network("resnet50").macs
    assert get_network("MobileNet-V3-Large").name == "mobilenet_v3_large"
    assert get_network("MnasNet-1.0").name == "mnasnet1_0"
    with pytest.raises(WorkloadError) as e:
        get_network("resnet51")
    assert "resnet51" in str(e.value) and "mobilenet_v2" in str(e.value)


@pytest.mark.parametrize("kwargs", [dict(resolution=0), dict(resolution=-3), dict(batch=0), dict(resolution=2.5)])
def test_bad_sizes_raise(kwargs):
    with pytest.raises(WorkloadError):
        get_network("resnet50", **kwargs)


def test_too_small_input_names_the_layer():
    # AlexNet's un-padded 3x3/2 pools empty the map below ~63 px
    with pytest.raises(WorkloadError, match="features"):
        get_network("alexnet", resolution=32)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(IMAGENET), res=st.integers(64, 256), batch=st.integers(1, 4))
def test_size_invariants(name, res, batch):
    """MACs are linear in batch and non-decreasing in resolution; parameters depend on neither
    (the torchvision classifiers sit behind adaptive pooling)."""
    one = get_network(name, resolution=res)
    assert get_network(name, resolution=res, batch=batch).macs == batch * one.macs
    assert get_network(name, resolution=res + 8).macs >= one.macs
    assert one.params == get_network(name).params
