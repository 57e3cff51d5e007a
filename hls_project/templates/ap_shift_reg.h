/*
#-  (c) Copyright 2011-2019 Xilinx, Inc. All rights reserved.
#-
#-  This file contains confidential and proprietary information
#-  of Xilinx, Inc. and is protected under U.S. and
#-  international copyright and other intellectual property
#-  laws.
#-
#-  DISCLAIMER
#-  This disclaimer is not a license and does not grant any
#-  rights to the materials distributed herewith. Except as
#-  otherwise provided in a valid license issued to you by
#-  Xilinx, and to the maximum extent permitted by applicable
#-  law: (1) THESE MATERIALS ARE MADE AVAILABLE "AS IS" AND
#-  WITH ALL FAULTS, AND XILINX HEREBY DISCLAIMS ALL WARRANTIES
#-  AND CONDITIONS, EXPRESS, IMPLIED, OR STATUTORY, INCLUDING
#-  BUT NOT LIMITED TO WARRANTIES OF MERCHANTABILITY, NON-
#-  INFRINGEMENT, OR FITNESS FOR ANY PARTICULAR PURPOSE; and
#-  (2) Xilinx shall not be liable (whether in contract or tort,
#-  including negligence, or under any other theory of
#-  liability) for any loss or damage of any kind or nature
#-  related to, arising under or in connection with these
#-  materials, including for any direct, or any indirect,
#-  special, incidental, or consequential loss or damage
#-  (including loss of data, profits, goodwill, or any type of
#-  loss or damage suffered as a result of any action brought
#-  by a third party) even if such damage or loss was
#-  reasonably foreseeable or Xilinx had been advised of the
#-  possibility of the same.
#-
#-  CRITICAL APPLICATIONS
#-  Xilinx products are not designed or intended to be fail-
#-  safe, or for use in any application requiring fail-safe
#-  performance, such as life-support or safety devices or
#-  systems, Class III medical devices, nuclear facilities,
#-  applications related to the deployment of airbags, or any
#-  other applications that could lead to death, personal
#-  injury, or severe property or environmental damage
#-  (individually and collectively, "Critical
#-  Applications"). Customer assumes the sole risk and
#-  liability of any use of Xilinx products in Critical
#-  Applications, subject only to applicable laws and
#-  regulations governing limitations on product liability.
#-
#-  THIS COPYRIGHT NOTICE AND DISCLAIMER MUST BE RETAINED AS
#-  PART OF THIS FILE AT ALL TIMES. 
#- ************************************************************************


   Licensed under the Apache License, Version 2.0 (the "License");
   you may not use this file except in compliance with the License.
   You may obtain a copy of the License at

       http://www.apache.org/licenses/LICENSE-2.0

   Unless required by applicable law or agreed to in writing, software
   distributed under the License is distributed on an "AS IS" BASIS,
   WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
   See the License for the specific language governing permissions and
   limitations under the License.
*/

// semifreddo: Xilinx's C simulation model of ap_shift_reg (hls4ml 1.3.0's copy, above), with one
// change: without __SYNTHESIS__ the register is a ring buffer, so a shift costs O(1) instead of
// moving all __SHIFT_DEPTH__ elements (hls4ml's io_stream line buffers are shift registers as long
// as a frame line: at 512 pixels that copy was most of the C simulation of a 3x3 conv). Element i
// (0: the newest) is Array[(Head + i) % __SHIFT_DEPTH__]; every shift and read returns what the
// original returns. With __SYNTHESIS__ the code is the original, element for element.
// Written over firmware/ap_types/ap_shift_reg.h by the Semifreddo writer (hls_project/writer.py).

#ifndef __SIM_AP_SHIFT_REG_H__
#define __SIM_AP_SHIFT_REG_H__


/*
 * This file contains a C++ model of shift register.
 * It defines C level simulation model.
 */
#ifndef __cplusplus
#error C++ is required to include this header file
#else

#include <cassert>

//////////////////////////////////////////////
// C level simulation model for ap_shift_reg
//////////////////////////////////////////////
template<typename __SHIFT_T__, unsigned int __SHIFT_DEPTH__ = 32>
class ap_shift_reg
{
  public:
    /// Constructors
    ap_shift_reg() { }
    ap_shift_reg(const char* name) { }
    /// Destructor
    virtual ~ap_shift_reg() { }

  private:
    /// Make copy constructor and assignment operator private
    ap_shift_reg(const ap_shift_reg< __SHIFT_T__, __SHIFT_DEPTH__ >& shreg)
    {
        for (unsigned i = 0; i < __SHIFT_DEPTH__; ++i)
            Array[i] = shreg.Array[i];
#ifndef __SYNTHESIS__
        Head = shreg.Head;
#endif
    }

    ap_shift_reg& operator = (const ap_shift_reg< __SHIFT_T__,
        __SHIFT_DEPTH__ >& shreg)
    {
        for (unsigned i = 0; i < __SHIFT_DEPTH__; ++i)
            Array[i] = shreg.Array[i];
#ifndef __SYNTHESIS__
        Head = shreg.Head;
#endif
        return *this;
    }

  public:
    // Shift the queue, push to back and read from a given address.
    __SHIFT_T__ shift(__SHIFT_T__ DataIn,
        unsigned int Addr = __SHIFT_DEPTH__ - 1, bool Enable = true)
    {
        assert(Addr < __SHIFT_DEPTH__ &&
            "Out-of-bound shift is found in ap_shift_reg.");
#ifdef __SYNTHESIS__
        __SHIFT_T__ ret = Array[Addr];
        if (Enable) {
            for (unsigned int i = __SHIFT_DEPTH__ - 1; i > 0; --i)
                Array[i] = Array[i-1];
            Array[0] = DataIn;
        }
#else
        __SHIFT_T__ ret = Array[(Head + Addr) % __SHIFT_DEPTH__];
        if (Enable) {
            Head = (Head == 0 ? __SHIFT_DEPTH__ : Head) - 1;
            Array[Head] = DataIn;
        }
#endif
        return ret;
    }

    // Read from a given address.
    __SHIFT_T__ read(unsigned int Addr = __SHIFT_DEPTH__ - 1) const
    {
        assert(Addr < __SHIFT_DEPTH__ &&
            "Out-of-bound read is found in ap_shift_reg.");
#ifdef __SYNTHESIS__
        return Array[Addr];
#else
        return Array[(Head + Addr) % __SHIFT_DEPTH__];
#endif
    }

  protected:
    __SHIFT_T__ Array[__SHIFT_DEPTH__];
#ifndef __SYNTHESIS__
    unsigned int Head = 0;
#endif
};

#endif //__cplusplus

#endif //__SIM_AP_SHIFT_REG_H__
