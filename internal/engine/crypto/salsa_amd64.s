#include "textflag.h"

// ROUND applies one quarter-round step to four lanes: T = ADD1 + ADD2;
// DST ^= T <<< SHIFT (X12 and X13 are scratch).
#define STEP(ADD1, ADD2, DST, SHIFT, RSHIFT) \
	MOVO  ADD1, X12;   \
	PADDL ADD2, X12;   \
	MOVO  X12, X13;    \
	PSLLL $SHIFT, X12; \
	PSRLL $RSHIFT, X13; \
	PXOR  X12, DST;    \
	PXOR  X13, DST

// func salsa8(out, x, in *[16]uint32)
// The words are in salsaOrder: X0 = (x0 x5 x10 x15), X1 = (x4 x9 x14 x3),
// X2 = (x8 x13 x2 x7), X3 = (x12 x1 x6 x11).
TEXT ·salsa8(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ in+16(FP), DX
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 0(DX), X4
	MOVOU 16(DX), X5
	MOVOU 32(DX), X6
	MOVOU 48(DX), X7
	PXOR X4, X0
	PXOR X5, X1
	PXOR X6, X2
	PXOR X7, X3
	MOVO X0, X8
	MOVO X1, X9
	MOVO X2, X10
	MOVO X3, X11
	MOVQ $4, CX

loop:
	// column round
	STEP(X0, X3, X1, 7, 25)
	STEP(X1, X0, X2, 9, 23)
	STEP(X2, X1, X3, 13, 19)
	STEP(X3, X2, X0, 18, 14)
	// rotate the lanes so that the rows line up: X1 = (x3 x4 x9 x14),
	// X2 = (x2 x7 x8 x13), X3 = (x1 x6 x11 x12)
	PSHUFL $0x93, X1, X1
	PSHUFL $0x4E, X2, X2
	PSHUFL $0x39, X3, X3
	// row round
	STEP(X0, X1, X3, 7, 25)
	STEP(X3, X0, X2, 9, 23)
	STEP(X2, X3, X1, 13, 19)
	STEP(X1, X2, X0, 18, 14)
	// and back
	PSHUFL $0x39, X1, X1
	PSHUFL $0x4E, X2, X2
	PSHUFL $0x93, X3, X3
	DECQ CX
	JNZ  loop

	PADDL X8, X0
	PADDL X9, X1
	PADDL X10, X2
	PADDL X11, X3
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	RET
