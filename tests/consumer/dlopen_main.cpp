// dlopen_main.c compiled as C++: a C++ program loading libtern at run time.
#include "dlopen_main.c"
