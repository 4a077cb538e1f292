"""blit.dis: the patch-parallel DIS flow against its slow reference, and
what it measures of known motions, beside OpenCV's DIS."""
import cv2
import numpy as np
import pytest

from blit import dis, reference


def _portrait(shape):
    import matplotlib.cbook as cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    return cv2.resize(grey, shape[::-1], interpolation=cv2.INTER_AREA)


def _moved(image, matrix):
    """``image`` moved by the affine ``matrix`` (2, 3), and the true flow
    from it to ``image``'s pixels: I0(x) = I1(x + u(x)) with u(x) = Mx - x."""
    h, w = image.shape
    moved = cv2.warpAffine(image, np.float32(matrix), (w, h), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    m = np.asarray(matrix, np.float64)
    truth = np.stack([m[0, 0] * xs + m[0, 1] * ys + m[0, 2] - xs,
                      m[1, 0] * xs + m[1, 1] * ys + m[1, 2] - ys], axis=-1)
    return moved, truth


@pytest.mark.parametrize("shape, matrix", [
    ((72, 88), [[1.02, 0.01, 1.3], [-0.01, 1.02, -0.8]]),
    ((75, 97), [[0.99, 0.0, -2.6], [0.0, 0.99, 1.7]]),  # odd sizes: a level's last row dropped
    ((40, 36), [[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]),  # one level: the finest is the coarsest
])
def test_dis_flow_equals_its_reference(shape, matrix):
    a = _portrait(shape)
    b, _ = _moved(a, matrix)
    fast = dis.dis_flow(b, a)
    slow = reference.dis_flow(b, a)
    assert fast.shape == shape + (2,) and fast.dtype == np.float32
    np.testing.assert_array_equal(fast.view(np.uint32), slow.view(np.uint32))


def test_a_shift_is_found_in_the_interior():
    a = _portrait((200, 160))
    b, truth = _moved(a, [[1, 0, 2.5], [0, 1, -1.5]])
    flow = dis.dis_flow(a, b)
    inner = np.s_[20:-20, 20:-20]
    err = np.hypot(*(flow[inner] - truth[inner]).transpose(2, 0, 1))
    assert np.median(err) < 0.1, np.median(err)


@pytest.mark.parametrize("matrix", [
    [[1.01, 0.0, 3.0], [0.0, 1.01, -2.0]],  # a head coming closer and moving
    [[0.998, -0.035, 6.0], [0.035, 0.998, -3.0]],  # turning by 2 degrees
])
def test_dis_flow_is_as_close_to_the_truth_as_opencvs(matrix):
    """On a head-sized pair the end-point error (interior, where both frames
    show the content) is within 15 % of that of the stream's OpenCV DIS
    (blit.stream._make_dis): the patch search in rounds loses little of
    OpenCV's sequential propagation."""
    from blit.stream import _make_dis

    a = _portrait((258, 242))
    b, truth = _moved(a, matrix)
    inner = np.s_[24:-24, 24:-24]

    def epe(flow):
        return float(np.hypot(*(flow[inner] - truth[inner]).transpose(2, 0, 1)).mean())

    ours = epe(dis.dis_flow(a, b))
    opencv = epe(_make_dis().calc(a, b, None))
    assert ours < 1.15 * opencv, (ours, opencv)
    assert ours < 0.5


def test_small_and_bad_inputs():
    flow = dis.dis_flow(np.zeros((6, 7), np.uint8), np.zeros((6, 7), np.uint8))
    assert flow.shape == (6, 7, 2) and not flow.any()  # under a patch: no search, no motion
    with pytest.raises(ValueError, match="one shape"):
        dis.dis_flow(np.zeros((8, 9), np.uint8), np.zeros((9, 8), np.uint8))
    a = b = np.zeros((20, 30), np.uint8)
    for bad in (dict(patch=0), dict(stride=0), dict(rounds=0), dict(iterations=-1),
                dict(finest=-1)):
        with pytest.raises(ValueError, match=f"dis_flow: {next(iter(bad))} must be at least"):
            dis.dis_flow(a, b, **bad)
    with pytest.raises(ValueError, match="at least one pixel"):
        dis.dis_flow(a[:0], b[:0])


def test_buffers_and_out_give_the_same_flow_frame_after_frame():
    """The stream's way: the pyramid and work arrays from buffers, the flow
    into ``out``, one pair after another of other sizes: each flow the one
    made afresh, bit for bit."""
    from guides.buffers import Buffers

    buffers = Buffers()
    for shape, matrix in (((72, 88), [[1.02, 0.01, 1.3], [-0.01, 1.02, -0.8]]),
                          ((121, 97), [[1.0, 0.0, -2.0], [0.0, 1.0, 1.0]]),
                          ((72, 88), [[0.99, 0.0, 0.5], [0.0, 0.99, 0.5]])):
        a = _portrait(shape)
        b, _ = _moved(a, matrix)
        out = np.full(shape + (2,), np.nan, np.float32)
        assert dis.dis_flow(a, b, buffers=buffers, out=out) is out
        np.testing.assert_array_equal(out.view(np.uint32), dis.dis_flow(a, b).view(np.uint32))
    with pytest.raises(ValueError, match="out"):
        dis.dis_flow(a, b, out=np.empty(shape + (2,), np.float64))
