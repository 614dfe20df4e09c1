"""Argument checks shared by the ops: errors name the argument and the shapes involved."""


def check_rank(name, tensor, rank):
    """Raises ValueError unless `tensor` has static rank `rank` (an int or a tuple of ints)."""
    ranks = (rank,) if isinstance(rank, int) else tuple(rank)
    actual = tensor.shape.rank
    if actual is None or actual not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"`{name}` must have rank {want}, got shape {tensor.shape}")


def check_channels(name, tensor, channels):
    """Raises ValueError unless the last (static) dimension of `tensor` equals `channels`."""
    if tensor.shape[-1] is not None and tensor.shape[-1] != channels:
        raise ValueError(f"`{name}` must have {channels} channels in its last dimension, got shape {tensor.shape}")


def check_compatible(name_a, a, name_b, b, axes):
    """Raises ValueError if the static sizes of `a` and `b` differ along any of `axes`."""
    for axis in axes:
        da, db = a.shape[axis], b.shape[axis]
        if da is not None and db is not None and da != db:
            raise ValueError(
                f"`{name_a}` and `{name_b}` must agree in dimension {axis}, got shapes {a.shape} and {b.shape}")
