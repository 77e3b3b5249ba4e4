// placeholder GUI
int main() { return 0; }
