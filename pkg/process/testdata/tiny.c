// tiny.elf is the seed of FuzzParseBinary.
// Built with: gcc -Os -s -Wl,--build-id -o tiny.elf tiny.c
int main(void) { return 0; }
