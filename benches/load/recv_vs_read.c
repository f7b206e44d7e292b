// Loopback round trips with write/read against send/recv (what src/net/sys.rs
// chose). Asserts nothing; prints microseconds per round trip.
//   gcc -O2 -o /tmp/rv benches/load/recv_vs_read.c && for i in 1 2 3; do
//     taskset -c 0 /tmp/rv 0 200000; taskset -c 0 /tmp/rv 1 200000; done
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int mode=atoi(argv[1]); int n=atoi(argv[2]);
  int l=socket(AF_INET,SOCK_STREAM,0); struct sockaddr_in a={0}; a.sin_family=AF_INET; a.sin_addr.s_addr=htonl(0x7f000001);
  bind(l,(void*)&a,sizeof a); listen(l,1); socklen_t al=sizeof a; getsockname(l,(void*)&a,&al);
  int c=socket(AF_INET,SOCK_STREAM,0); connect(c,(void*)&a,sizeof a); int s=accept(l,0,0);
  int one=1; setsockopt(c,IPPROTO_TCP,TCP_NODELAY,&one,4); setsockopt(s,IPPROTO_TCP,TCP_NODELAY,&one,4);
  char buf[4096]; memset(buf,'x',sizeof buf); char rb[65536];
  double t0=now();
  for(int i=0;i<n;i++){
    if(mode==0){ write(c,buf,2700); read(s,rb,sizeof rb); write(s,buf,2100); read(c,rb,sizeof rb);} 
    else { send(c,buf,2700,MSG_NOSIGNAL); recv(s,rb,sizeof rb,0); send(s,buf,2100,MSG_NOSIGNAL); recv(c,rb,sizeof rb,0);} 
  }
  printf("%s %.3f us/iter\n", mode?"send/recv":"write/read", (now()-t0)/n*1e6);
}
