"""Every SPU node compiles its own program; no executable crosses a party boundary.

SecretFlow 1.11's ``SPU.__call__`` compiles a device function at the first
SPU node only and ships the ``ExecutableProto`` to the others, which run it on
their secret shares without any check, so that first node chooses what its
peers compute on their shares. This replacement (adapted from that method,
Apache-2.0) compiles at every node from the same function and public
metadata; only the output shapes and count, when the caller asks the compiler
for them, come from the first node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def install() -> None:
    from secretflow.device.device import spu as S

    if getattr(S.SPU, "_safehouse_local_compile", False):
        return
    S.SPU.__call__ = _call
    S.SPU._safehouse_local_compile = True


def _call(
    self: Any,
    func: Callable[..., Any],
    *,
    static_argnames: Any = None,
    num_returns_policy: Any = None,
    user_specified_num_returns: int = 1,
    copts: Any = None,
) -> Callable[..., Any]:
    import spu.spu_pb2 as spu_pb2
    from secretflow.device.device import spu as S

    policy = S.SPUCompilerNumReturnsPolicy.SINGLE if num_returns_policy is None else num_returns_policy
    options = spu_pb2.CompilerOptions() if copts is None else copts

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        fn, kwargs = S._argnames_partial_except(func, static_argnames, kwargs)
        # Inputs become SPU objects once; compiling reads their metadata, running their shares.
        args, kwargs = self._place_arguments(*args, **kwargs)
        compiled, out_shapes, num_returns = _compile_everywhere(
            self, func, fn, policy, user_specified_num_returns, options, args, kwargs
        )
        return _run_everywhere(self, policy, num_returns, compiled, out_shapes, args, kwargs)

    return wrapper


def _compile_everywhere(
    spu: Any, func: Any, fn: Any, policy: Any, num_returns: int, copts: Any, args: Any, kwargs: Any
) -> tuple[list[Any], list[Any], int]:
    import jax
    import secretflow.distributed as sfd
    from secretflow.device.device import spu as S

    meta_args, meta_kwargs = jax.tree_util.tree_map(
        lambda x: x.meta if isinstance(x, S.SPUObject) else x, (args, kwargs)
    )
    fn_name = S.get_fn_code_name(func)

    def compile_fn(*a: Any, **k: Any) -> Any:
        return S._spu_compile(*a, **k)

    compile_fn.__name__ = f"spu_compile({fn_name})"
    nodes = spu.cluster_def["nodes"]
    compiled = [
        sfd.remote(compile_fn).party(n["party"]).options(num_returns=2).remote(fn, copts, fn_name, *meta_args,
                                                                               **meta_kwargs)
        for n in nodes
    ]  # fmt: skip
    out_shapes = [c[1] for c in compiled]
    if policy == S.SPUCompilerNumReturnsPolicy.FROM_COMPILER:
        # Only the number of outputs and their shapes leave the first node, never its program.
        count = sfd.remote(lambda e: len(e.output_names)).party(nodes[0]["party"]).remote(compiled[0][0])
        num_returns, shape0 = sfd.get([count, compiled[0][1]])
        out_shapes = [shape0] * len(compiled)
    if policy == S.SPUCompilerNumReturnsPolicy.SINGLE:
        num_returns = 1
    return [c[0] for c in compiled], out_shapes, num_returns


def _run_everywhere(
    spu: Any, policy: Any, num_returns: int, compiled: list[Any], out_shapes: list[Any], args: Any, kwargs: Any
) -> Any:
    import jax
    from secretflow.device.device import spu as S

    outputs: list[Any] = [None] * spu.world_size
    for i, actor in enumerate(spu.actors.values()):
        actor_args, actor_kwargs = jax.tree_util.tree_map(lambda x, i=i: x.shares_name[i], (args, kwargs))
        val, _ = jax.tree_util.tree_flatten((actor_args, actor_kwargs))
        outputs[i] = actor.run.options(num_returns=2 * num_returns).remote(policy, out_shapes[i], compiled[i], *val)
    if policy == S.SPUCompilerNumReturnsPolicy.SINGLE:
        return S.SPUObject(spu, outputs[0][0], [o[1] for o in outputs])
    per_output = list(zip(*(o[num_returns:] for o in outputs), strict=True))  # each output's shares, node by node
    objs = [S.SPUObject(spu, m, list(sh)) for m, sh in zip(outputs[0][0:num_returns], per_output, strict=True)]
    if policy == S.SPUCompilerNumReturnsPolicy.FROM_USER:
        return objs[0] if len(objs) == 1 else objs
    _, out_tree = jax.tree_util.tree_flatten(out_shapes[0])
    return jax.tree_util.tree_unflatten(out_tree, objs)
