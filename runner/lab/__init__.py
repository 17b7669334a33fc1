"""Labs: boot a kernel under test in an emulator, run the suite against its KVM."""
