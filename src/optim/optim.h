// Everything a training loop needs from the optimizer layer.
#pragma once

#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/grad_buffer.h"
#include "optim/muon.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "optim/sgd.h"
