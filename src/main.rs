fn main() {
    let code = sandbox::run(std::env::args_os());
    std::process::exit(code.code());
}
