//! The kernel cache, the backend switch, and errors (never crashes) of the JIT backend.

use brainlift_compiler::codegen::{CodegenError, CodegenOptions, CompiledKernels};
use brainlift_compiler::passes::fusion::{
    FusedKernel, KernelInput, KernelNode, KernelNodeKind, KernelOutput,
};
use brainlift_ir::{DType, Function, FunctionBuilder, Shape, TensorType, UnaryOp, ValueId};
use brainlift_runtime::{
    Backend, Executable, JitExecutable, RuntimeError, Tensor, cache_stats, compile,
};

fn scaled_exp(name: &str, scale: f64) -> Function {
    let mut b = FunctionBuilder::new(name);
    let x = b.param("x", TensorType::new(DType::F64, [5]));
    let s = b.splat(TensorType::new(DType::F64, [5]), scale);
    let m = b.mul(x, s).unwrap();
    let e = b.unary(UnaryOp::Exp, m).unwrap();
    b.finish([("e".to_string(), e)])
}

#[test]
fn second_compile_is_a_cache_hit_and_names_do_not_matter() {
    let f = scaled_exp("cache_probe", 1.2345);
    let before = cache_stats();
    let a = JitExecutable::compile(&f).unwrap();
    assert!(!a.was_cache_hit());
    let b = JitExecutable::compile(&f).unwrap();
    assert!(b.was_cache_hit());
    // Same structure under other names: still a hit.
    let mut g = scaled_exp("other_name", 1.2345);
    g.params[0].name = "y".into();
    g.outputs[0].name = "out".into();
    let c = JitExecutable::compile(&g).unwrap();
    assert!(c.was_cache_hit());
    // A different constant: a miss.
    let d = JitExecutable::compile(&scaled_exp("cache_probe", 2.0)).unwrap();
    assert!(!d.was_cache_hit());
    let after = cache_stats();
    assert!(after.hits >= before.hits + 2, "{before:?} -> {after:?}");
    assert!(after.misses >= before.misses + 2, "{before:?} -> {after:?}");
    assert!(after.compile_time > before.compile_time);
    // Shared executables compute the right thing.
    let x = Tensor::from_f64([5], vec![0.0, 1.0, -1.0, 2.0, 0.5]).unwrap();
    let mut c = c;
    let out = c.run(std::slice::from_ref(&x)).unwrap();
    let want: Vec<f64> = [0.0f64, 1.0, -1.0, 2.0, 0.5]
        .iter()
        .map(|v| (v * 1.2345).exp())
        .collect();
    assert_eq!(out[0].as_f64().unwrap(), &want[..]);
    drop((a, b, c, d));
}

#[test]
fn backend_switch_runs_both_backends() {
    let f = scaled_exp("switch", 0.5);
    let x = Tensor::from_f64([5], vec![1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    let mut j = compile(&f, Backend::Jit).unwrap();
    let mut i = compile(&f, Backend::Interp).unwrap();
    let a = j.run(std::slice::from_ref(&x)).unwrap();
    let b = i.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0].as_f64().unwrap()[1], 1.0f64.exp());
}

#[test]
fn malformed_ir_is_an_error() {
    // Recorded result type disagrees with the op's type rule.
    let mut f = scaled_exp("malformed", 1.0);
    let last = f.types.len() - 1;
    f.types[last] = TensorType::new(DType::F32, [5]);
    let e = JitExecutable::compile(&f).unwrap_err();
    assert!(matches!(e, RuntimeError::Ir(_)), "{e}");
    // Operand used before definition.
    let mut f = scaled_exp("malformed2", 1.0);
    f.insts[1].args[0] = ValueId(99);
    assert!(JitExecutable::compile(&f).is_err());
}

#[test]
fn wrong_inputs_are_an_error() {
    let f = scaled_exp("inputs", 1.0);
    let mut exe = JitExecutable::compile(&f).unwrap();
    let bad = Tensor::from_f64([4], vec![0.0; 4]).unwrap();
    let e = exe.run(&[bad]).unwrap_err();
    assert!(e.to_string().contains("f64[5]"), "{e}");
    assert!(exe.run(&[]).is_err());
}

#[test]
fn unsupported_kernel_node_names_the_op() {
    // exp on i32 is not defined: codegen must refuse, naming the op.
    let k = FusedKernel {
        id: 0,
        shape: Shape::new(&[3]),
        inputs: vec![KernelInput {
            value: ValueId(0),
            dtype: DType::I32,
            strides: vec![1],
        }],
        nodes: vec![
            KernelNode {
                kind: KernelNodeKind::Input(0),
                dtype: DType::I32,
            },
            KernelNode {
                kind: KernelNodeKind::Unary(UnaryOp::Exp, 0),
                dtype: DType::I32,
            },
        ],
        outputs: vec![KernelOutput {
            node: 1,
            value: ValueId(1),
        }],
        insts: vec![0],
    };
    let e = CompiledKernels::compile_kernels(&[&k], &CodegenOptions::default()).unwrap_err();
    assert!(
        matches!(&e, CodegenError::Unsupported { op, .. } if op == "exp"),
        "{e}"
    );
    assert!(e.to_string().contains("exp"), "{e}");
    // A node referring to a missing input.
    let mut k2 = k.clone();
    k2.nodes[0].kind = KernelNodeKind::Input(7);
    assert!(CompiledKernels::compile_kernels(&[&k2], &CodegenOptions::default()).is_err());
}

#[test]
fn clif_text_is_available() {
    let f = scaled_exp("clif", 3.0);
    let plan = brainlift_compiler::passes::fusion::fuse(&f).unwrap();
    let text = brainlift_compiler::codegen::clif_text(&plan, &CodegenOptions::default()).unwrap();
    assert!(text.starts_with("; kernel k0"), "{text}");
    assert!(text.contains("f64x2"), "{text}");
    assert!(text.contains("call"), "{text}");
}
