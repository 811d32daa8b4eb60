// Sanitizer defaults linked into every fuzz target, so that running one by hand (a crash
// input, a corpus replay) behaves like scripts/fuzz.

extern "C" const char* __ubsan_default_options() {
  // halt_on_error: pointer-overflow is built recoverable only so that ubsan.supp can silence
  // RapidJSON's; every other report still stops the run.
  return "print_stacktrace=1:halt_on_error=1:suppressions=" JOULE_FUZZ_UBSAN_SUPPRESSIONS;
}
