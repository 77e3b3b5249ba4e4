// placeholder CLI
int main() { return 0; }
