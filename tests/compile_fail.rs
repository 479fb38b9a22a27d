//! The type system is the guarantee that a borrowed session cannot be freed or outlive what
//! it was borrowed from: these programs must not compile.

#[test]
fn borrowed_sessions_cannot_be_freed_or_outlive_their_owner() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}
