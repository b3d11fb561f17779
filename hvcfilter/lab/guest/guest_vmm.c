/*
 * guest_vmm: the lab's tiny VMM that boots a Linux arm64 kernel as a KVM guest.
 *
 * Runs inside the lab VM (a real Debian kernel with KVM).  Creates a VM with an
 * in-kernel vGICv3 and the architected timer, installs the SMCCC filter table
 * with the code `hvcfilter compile --format c` emits (the header is included
 * as "table.h"), loads the kernel Image, the initramfs and the device tree the
 * Python side built (hvcfilter/lab/fdt.py) at the addresses below, emulates a
 * 16550 UART through KVM_EXIT_MMIO and answers forwarded SMCCC calls per a
 * policy.  Layout constants must match hvcfilter/lab/guest.py.
 *
 * Usage: guest_vmm <Image> <initrd> <dtb> <ncpus> <policy 0|1> <hold 0|1> <timeout_s>
 *   policy 0: forwarded calls get NOT_SUPPORTED; 1: PSCI in userspace.
 *   hold 1: secondaries wait for a userspace CPU_ON instead of KVM's PSCI.
 * Prints the guest console on stdout and one "@@VMM ..." line per event:
 *   @@VMM INSTALL <rc> <record> <errno>     @@VMM FWD <vcpu> <flags> <fid> <x0>
 *   @@VMM EXIT <reason> <detail>            (SHUTDOWN, RESET, TIMEOUT, ERROR)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Older cross headers predate the SMCCC filter (Linux 6.4). */
#ifndef KVM_ARM_VM_SMCCC_CTRL
struct kvm_smccc_filter {
	uint32_t base;
	uint32_t nr_functions;
	uint8_t action;
	uint8_t pad[15];
};
#endif
#include "table.h"

/* hypercall.flags (6.4) shares its offset with the older u32 longmode. */
#ifdef KVM_HYPERCALL_EXIT_SMC
#define HYPERCALL_FLAGS(run) ((run)->hypercall.flags)
#else
#define HYPERCALL_FLAGS(run) ((run)->hypercall.longmode)
#endif

#define RAM_BASE 0x80000000ULL
#define RAM_SIZE 0x10000000ULL
#define INITRD_OFF 0x08000000ULL
#define DTB_OFF (RAM_SIZE - 0x200000ULL)
#define UART_BASE 0x09000000ULL
#define GICD_BASE 0x08000000ULL
#define GICR_BASE 0x080A0000ULL
#define MAX_CPUS 8

#define REG_X(n) (0x6030000000100000ULL + 2ULL * (n))
#define REG_PC 0x6030000000100040ULL
#define PSCI_CPU_ON_32 0x84000003U
#define PSCI_CPU_ON_64 0xC4000003U

static int vm_fd, ncpus, policy, hold;
static int vcpu_fd[MAX_CPUS];
static struct kvm_run *runs[MAX_CPUS];
static pthread_t threads[MAX_CPUS];
static volatile int stopping;
static int started[MAX_CPUS];
static uint64_t start_pc[MAX_CPUS], start_x0[MAX_CPUS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static uint8_t uart_ier, uart_lcr, uart_mcr, uart_scr;

static void die(const char *what)
{
	printf("\n@@VMM EXIT ERROR %s:%d\n", what, errno);
	fflush(stdout);
	_exit(3);
}

static void finish(const char *reason, int detail)
{
	int i;

	pthread_mutex_lock(&lock);
	if (!stopping) {
		stopping = 1;
		printf("\n@@VMM EXIT %s %d\n", reason, detail);
		fflush(stdout);
		for (i = 0; i < ncpus; i++)
			if (threads[i] && !pthread_equal(threads[i], pthread_self()))
				pthread_kill(threads[i], SIGUSR1);
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
}

static void set_reg(int fd, uint64_t id, uint64_t val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)&val };
	if (ioctl(fd, KVM_SET_ONE_REG, &r) < 0)
		die("set_one_reg");
}

static uint64_t get_reg(int fd, uint64_t id)
{
	uint64_t val = 0;
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)&val };
	if (ioctl(fd, KVM_GET_ONE_REG, &r) < 0)
		die("get_one_reg");
	return val;
}

static void load(const char *path, uint8_t *mem, uint64_t off, uint64_t limit)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	ssize_t n;
	uint64_t done = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		die(path);
	if ((uint64_t)st.st_size > limit)
		die("file too large");
	while (done < (uint64_t)st.st_size) {
		n = read(fd, mem + off + done, (size_t)st.st_size - done);
		if (n <= 0)
			die(path);
		done += (uint64_t)n;
	}
	close(fd);
}

/* A 16550 with an always-empty transmitter; no receive, no interrupts line. */
static void uart_access(struct kvm_run *run)
{
	unsigned reg = (unsigned)(run->mmio.phys_addr - UART_BASE);
	uint8_t v = run->mmio.data[0], out = 0;

	if (run->mmio.is_write) {
		switch (reg) {
		case 0: if (!(uart_lcr & 0x80)) { putchar(v); if (v == '\n') fflush(stdout); } break;
		case 1: if (!(uart_lcr & 0x80)) uart_ier = v & 0x0f; break;
		case 3: uart_lcr = v; break;
		case 4: uart_mcr = v; break;
		case 7: uart_scr = v; break;
		}
		return;
	}
	switch (reg) {
	case 1: out = (uart_lcr & 0x80) ? 0 : uart_ier; break;
	case 2: out = (uart_ier & 0x02) ? 0xc2 : 0xc1; break;
	case 3: out = uart_lcr; break;
	case 4: out = uart_mcr; break;
	case 5: out = 0x60; break;
	case 6: out = 0xb0; break;
	case 7: out = uart_scr; break;
	}
	memset(run->mmio.data, 0, sizeof(run->mmio.data));
	run->mmio.data[0] = out;
}

static int vcpu_by_mpidr(uint64_t mpidr)
{
	uint64_t id = (mpidr & 0xff) | ((mpidr >> 8 & 0xff) << 4);
	return id < (uint64_t)ncpus ? (int)id : -1;
}

/* PSCI in userspace for a forwarded call; returns x0. */
static uint64_t psci(int cpu, uint32_t fid)
{
	int fd = vcpu_fd[cpu], t;
	uint32_t f = fid & ~0x40000000U;

	switch (f) {
	case 0x84000000: return 0x10001; /* VERSION 1.1 */
	case 0x84000003: /* CPU_ON */
		t = vcpu_by_mpidr(get_reg(fd, REG_X(1)));
		if (t < 0)
			return (uint64_t)-2; /* INVALID_PARAMETERS */
		pthread_mutex_lock(&lock);
		if (started[t]) {
			pthread_mutex_unlock(&lock);
			return (uint64_t)-4; /* ALREADY_ON */
		}
		start_pc[t] = get_reg(fd, REG_X(2));
		start_x0[t] = get_reg(fd, REG_X(3));
		started[t] = 1;
		pthread_cond_broadcast(&cond);
		pthread_mutex_unlock(&lock);
		return 0;
	case 0x84000004: /* AFFINITY_INFO */
		t = vcpu_by_mpidr(get_reg(fd, REG_X(1)));
		return t < 0 ? (uint64_t)-2 : started[t] ? 0 : 1;
	case 0x84000002: finish("CPU_OFF", cpu); return 0;
	case 0x84000008: finish("SHUTDOWN", 0); return 0;
	case 0x84000009: finish("RESET", 0); return 0;
	case 0x8400000A: { /* FEATURES */
		uint32_t q = (uint32_t)get_reg(fd, REG_X(1)) & ~0x40000000U;
		return (q >= 0x84000000 && q <= 0x8400000A && q != 0x84000001 && q != 0x84000005 &&
			q != 0x84000006 && q != 0x84000007) ? 0 : (uint64_t)-1;
	}
	}
	return (uint64_t)-1;
}

static void hypercall(int cpu, struct kvm_run *run)
{
	uint32_t fid = (uint32_t)run->hypercall.nr;
	uint64_t x0 = (uint64_t)-1;

	if (policy == 1 && (fid & 0x3f000000U) == 0x04000000U)
		x0 = psci(cpu, fid);
	set_reg(vcpu_fd[cpu], REG_X(0), x0);
	printf("\n@@VMM FWD %d %llu %x %llx\n", cpu, (unsigned long long)HYPERCALL_FLAGS(run), fid,
	       (unsigned long long)x0);
	fflush(stdout);
}

static void *vcpu_loop(void *arg)
{
	int cpu = (int)(intptr_t)arg;
	struct kvm_run *run = runs[cpu];

	if (cpu && hold) {
		pthread_mutex_lock(&lock);
		while (!started[cpu] && !stopping)
			pthread_cond_wait(&cond, &lock);
		pthread_mutex_unlock(&lock);
		if (stopping)
			return NULL;
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
		set_reg(vcpu_fd[cpu], REG_PC, start_pc[cpu]);
		set_reg(vcpu_fd[cpu], REG_X(0), start_x0[cpu]);
		if (ioctl(vcpu_fd[cpu], KVM_SET_MP_STATE, &mp) < 0)
			die("set_mp_state");
	}
	while (!stopping) {
		if (ioctl(vcpu_fd[cpu], KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("kvm_run");
		}
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			if (run->mmio.phys_addr >= UART_BASE && run->mmio.phys_addr < UART_BASE + 8)
				uart_access(run);
			else if (!run->mmio.is_write)
				memset(run->mmio.data, 0, sizeof(run->mmio.data));
			break;
		case KVM_EXIT_HYPERCALL:
			hypercall(cpu, run);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			finish(run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? "SHUTDOWN" :
			       run->system_event.type == KVM_SYSTEM_EVENT_RESET ? "RESET" : "EVENT",
			       (int)run->system_event.type);
			break;
		case KVM_EXIT_INTR:
			break;
		default:
			printf("\n@@VMM UNHANDLED %d %u\n", cpu, run->exit_reason);
			finish("ERROR", (int)run->exit_reason);
		}
	}
	return NULL;
}

static void on_signal(int sig) { (void)sig; }

static void vgic_attr(int fd, uint32_t group, uint64_t attr, uint64_t *val)
{
	struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)val };
	if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		die("vgic attr");
}

int main(int argc, char **argv)
{
	struct kvm_userspace_memory_region region;
	struct kvm_create_device gic = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	struct kvm_vcpu_init init;
	struct hvcfilter_smccc_install_error ierr = { 0, 0 };
	struct sigaction sa;
	uint64_t addr;
	uint8_t *mem;
	long run_size;
	int kvm, i, timeout, rc;

	if (argc != 8) {
		fprintf(stderr, "usage: guest_vmm Image initrd dtb ncpus policy hold timeout\n");
		return 2;
	}
	ncpus = atoi(argv[4]);
	policy = atoi(argv[5]);
	hold = atoi(argv[6]);
	timeout = atoi(argv[7]);
	if (ncpus < 1 || ncpus > MAX_CPUS)
		return 2;
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	if ((kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0)
		die("/dev/kvm");
	if ((vm_fd = ioctl(kvm, KVM_CREATE_VM, 0)) < 0)
		die("create_vm");
	rc = hvcfilter_install_smccc_filters(vm_fd, &ierr);
	printf("@@VMM INSTALL %d %d %d\n", rc, rc ? ierr.record : 0, rc ? ierr.error : 0);
	fflush(stdout);
	mem = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (mem == MAP_FAILED)
		die("mmap ram");
	region = (struct kvm_userspace_memory_region){ .slot = 0, .guest_phys_addr = RAM_BASE,
		.memory_size = RAM_SIZE, .userspace_addr = (uint64_t)(uintptr_t)mem };
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("memory region");
	load(argv[1], mem, 0, INITRD_OFF);
	load(argv[2], mem, INITRD_OFF, DTB_OFF - INITRD_OFF);
	load(argv[3], mem, DTB_OFF, 0x200000);
	if (ioctl(vm_fd, KVM_CREATE_DEVICE, &gic) < 0)
		die("create vgic");
	addr = GICD_BASE;
	vgic_attr(gic.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &addr);
	addr = GICR_BASE;
	vgic_attr(gic.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &addr);
	if (ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		die("preferred_target");
	if ((run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)) <= 0)
		die("mmap size");
	for (i = 0; i < ncpus; i++) {
		struct kvm_vcpu_init vi = init;
		vi.features[0] |= 1U << KVM_ARM_VCPU_PSCI_0_2;
		if (i)
			vi.features[0] |= 1U << KVM_ARM_VCPU_POWER_OFF;
		if ((vcpu_fd[i] = ioctl(vm_fd, KVM_CREATE_VCPU, i)) < 0)
			die("create_vcpu");
		if (ioctl(vcpu_fd[i], KVM_ARM_VCPU_INIT, &vi) < 0)
			die("vcpu_init");
		runs[i] = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd[i], 0);
		if (runs[i] == MAP_FAILED)
			die("mmap run");
	}
	vgic_attr(gic.fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
	set_reg(vcpu_fd[0], REG_PC, RAM_BASE);
	set_reg(vcpu_fd[0], REG_X(0), RAM_BASE + DTB_OFF);
	started[0] = 1;
	for (i = 0; i < ncpus; i++)
		if (pthread_create(&threads[i], NULL, vcpu_loop, (void *)(intptr_t)i))
			die("pthread_create");
	for (i = 0; i < timeout * 10 && !stopping; i++)
		usleep(100000);
	finish("TIMEOUT", timeout);
	for (i = 0; i < ncpus; i++) {
		pthread_kill(threads[i], SIGUSR1);
		pthread_join(threads[i], NULL);
	}
	fflush(stdout);
	return 0;
}
